"""Writes the socket can't take at once: buffered by the transport and sent
as the peer reads. On pyloop with an I/O thread (the suite's setting, see
conftest.py) the I/O thread sends them (pyloop/rt/io_thread.hpp, "Writes");
asyncio's loop sends them from its own selector. Either way every byte
arrives once and in order, flow control, close, write_eof, abort and
sendfile keep asyncio's meaning, and a dead peer gives asyncio's error."""

import asyncio
import os
import random
import socket
import time

import pytest
from conftest import fd_count

import pyloop
from pyloop import _native

pytestmark = pytest.mark.timeout(60)


def slow_reader(sock, pause=0.2):
    """Reads sock to EOF in a thread, after letting the writes pile up."""
    time.sleep(pause)
    chunks = []
    while data := sock.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def pieces_of(payload, seed):
    """payload cut in random sizes, as bytes, bytearray and memoryview."""
    rng = random.Random(seed)
    kinds = (bytes, bytearray, memoryview)
    at, out = 0, []
    while at < len(payload):
        n = rng.choice((1, 100, 4096, 65536, 300000))
        out.append(kinds[len(out) % 3](payload[at : at + n]))
        at += n
    return out


class Recorder(asyncio.Protocol):
    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()
        self.received = bytearray()
        self.paused_at, self.resumed_at = [], []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += data

    def eof_received(self):
        return True  # keep the transport open for writing

    def pause_writing(self):
        self.paused_at.append(self.transport.get_write_buffer_size())

    def resume_writing(self):
        self.resumed_at.append(self.transport.get_write_buffer_size())

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def tcp_pair():
    """Two ends of a loopback TCP connection with small buffers, so that
    writes block soon."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = socket.socket()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        peer.connect(server.getsockname())
        ours, _ = server.accept()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
    return ours, peer


async def connected_pair(loop, family="tcp"):
    """A Recorder on our end of a connection (TCP or a Unix socketpair),
    and the peer's blocking end."""
    ours, peer = tcp_pair() if family == "tcp" else socket.socketpair()
    transport, protocol = await loop.create_connection(Recorder, sock=ours)
    return transport, protocol, peer


def sends():
    return _native.io_stats()["sends"]


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_blocked_writes_arrive_whole_and_in_order(loop, family):
    payload = os.urandom(12 << 20)

    async def main():
        transport, protocol, peer = await connected_pair(loop, family)
        reader = loop.run_in_executor(None, slow_reader, peer)
        for i, piece in enumerate(pieces_of(payload, 1)):
            if i % 7 == 6:
                transport.writelines([piece[:10], piece[10:]])
            else:
                transport.write(piece)
            if i % 25 == 0:
                await asyncio.sleep(0)  # new writes while earlier ones are still queued
        assert transport.get_write_buffer_size() > 0
        transport.close()
        exc = await protocol.lost
        got = await reader
        peer.close()
        return exc, got, transport.get_write_buffer_size()

    sent_before = sends()  # (starts the I/O threads on first use)
    fds = fd_count()
    exc, got, left = loop.run_until_complete(main())
    assert exc is None
    assert len(got) == len(payload) and got == payload
    assert left == 0
    assert fd_count() == fds
    if isinstance(loop, pyloop.Loop) and _native.io_stats()["threads"]:
        assert sends() > sent_before  # the I/O thread did send


def test_flow_control_pauses_and_resumes_at_the_water_marks(loop):
    high, low = 256 << 10, 64 << 10
    piece = os.urandom(48 << 10)

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        transport.set_write_buffer_limits(high=high, low=low)
        reader = loop.run_in_executor(None, slow_reader, peer, 0.05)
        written = 0
        for _ in range(5):
            while len(protocol.paused_at) == len(protocol.resumed_at):
                transport.write(piece)
                written += len(piece)
            while len(protocol.resumed_at) < len(protocol.paused_at):
                await asyncio.sleep(0.001)
        transport.close()
        await protocol.lost
        got = await reader
        peer.close()
        return protocol, written, got

    protocol, written, got = loop.run_until_complete(main())
    assert got == piece * (written // len(piece))
    assert len(protocol.paused_at) == 5
    assert all(size > high for size in protocol.paused_at)
    assert all(size <= low for size in protocol.resumed_at)


def test_write_eof_waits_for_the_queued_bytes_and_reading_goes_on(loop):
    payload = os.urandom(6 << 20)

    async def main():
        transport, protocol, peer = await connected_pair(loop)

        def peer_side():
            got = slow_reader(peer)  # to the EOF that write_eof sends
            peer.sendall(b"after eof")
            peer.shutdown(socket.SHUT_WR)
            return got

        answer = loop.run_in_executor(None, peer_side)
        transport.write(payload)
        transport.write_eof()
        got = await answer
        while bytes(protocol.received) != b"after eof":
            await asyncio.sleep(0.01)
        transport.close()
        exc = await protocol.lost
        peer.close()
        return got, exc

    got, exc = loop.run_until_complete(main())
    assert got == payload
    assert exc is None


def test_abort_drops_the_queued_bytes(loop):
    async def main():
        transport, protocol, peer = await connected_pair(loop)
        for _ in range(64):
            transport.write(os.urandom(1 << 16))
        await asyncio.sleep(0.05)  # some of it handed on, the socket full
        assert transport.get_write_buffer_size() > 0
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        exc = await protocol.lost
        got = await loop.run_in_executor(None, slow_reader, peer, 0)
        peer.close()
        return exc, len(got)

    fds = fd_count()
    exc, received = loop.run_until_complete(main())
    assert exc is None
    assert received < 64 << 16
    assert fd_count() == fds


def test_peer_gone_with_writes_queued_loses_the_connection(loop):
    async def main():
        transport, protocol, peer = await connected_pair(loop)
        for _ in range(64):
            transport.write(b"z" * (1 << 16))
        await asyncio.sleep(0.05)
        peer.close()
        exc = await protocol.lost
        return exc, transport.is_closing()

    fds = fd_count()
    exc, closing = loop.run_until_complete(main())
    assert isinstance(exc, ConnectionError)
    assert closing
    assert fd_count() == fds
