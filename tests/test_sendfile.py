"""loop.sendfile() over a socket transport, and loop.sock_sendfile() on a
plain socket. On pyloop with an I/O thread (the suite's setting) the I/O
thread sends the file (pyloop/_sendfile.py); on asyncio's loop,
os.sendfile() runs on the loop thread. Both must send the
same bytes, in order with the writes around them, leave the file position
where asyncio leaves it, and stop cleanly when cancelled or when the peer
goes away. (CPython's test_sendfile runs against pyloop too, from
tests/test_cpython_asyncio.py.)"""

import asyncio
import os
import socket
import tempfile

import pytest
from conftest import fd_count
from test_io_writes import connected_pair, slow_reader, tcp_pair

import pyloop
from pyloop import _native

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def body_file():
    body = os.urandom(6 << 20)
    with tempfile.TemporaryFile() as file:
        file.write(body)
        file.seek(0)
        yield body, file


def sends():
    return _native.io_stats()["sends"]


def run(loop, coro):
    sent_before = sends()  # (starts the I/O threads on first use)
    fds = fd_count()
    result = loop.run_until_complete(coro)
    assert fd_count() == fds
    return result, sends() - sent_before


def assert_prefix_then_after(got, body, offset):
    """A cancelled send from offset: part of the file, then b"after"."""
    sent = len(got) - len(b"after")
    assert 0 < sent < len(body) - offset
    assert got == body[offset : offset + sent] + b"after"


def test_sendfile_follows_the_queued_bytes_and_moves_the_file_position(loop, body_file):
    body, file = body_file
    head = os.urandom(4 << 20)

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        reader = loop.run_in_executor(None, slow_reader, peer)
        transport.write(head)
        sent = await loop.sendfile(transport, file, offset=1000, count=3 << 20)
        position = file.tell()
        transport.write(b"tail")
        transport.close()
        await protocol.lost
        got = await reader
        peer.close()
        return sent, position, got

    (sent, position, got), io_sends = run(loop, main())
    assert sent == 3 << 20
    assert position == 1000 + (3 << 20)
    assert got == head + body[1000 : 1000 + (3 << 20)] + b"tail"
    if isinstance(loop, pyloop.Loop) and _native.io_stats()["threads"]:
        assert io_sends > 0


def test_sendfile_to_the_end_of_the_file(loop, body_file):
    body, file = body_file

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        reader = loop.run_in_executor(None, slow_reader, peer)
        sent = await loop.sendfile(transport, file, offset=5)
        transport.close()
        await protocol.lost
        got = await reader
        peer.close()
        return sent, file.tell(), got

    (sent, position, got), _ = run(loop, main())
    assert sent == len(body) - 5
    assert position == len(body)
    assert got == body[5:]


def test_cancelled_sendfile_stops_and_writes_follow(loop, body_file):
    body, file = body_file

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        file.seek(100)
        task = asyncio.ensure_future(loop.sendfile(transport, file, offset=100))
        await asyncio.sleep(0.05)  # the socket is full, the peer does not read
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        position = file.tell()
        transport.write(b"after")
        transport.close()
        got = await loop.run_in_executor(None, slow_reader, peer, 0)
        await protocol.lost
        peer.close()
        return position, got

    (position, got), _ = run(loop, main())
    # asyncio leaves the file position alone when cancelled.
    assert position == 100
    assert_prefix_then_after(got, body, 100)


def test_peer_gone_during_sendfile_raises(loop, body_file):
    _, file = body_file

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        task = asyncio.ensure_future(loop.sendfile(transport, file))
        await asyncio.sleep(0.05)
        peer.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)
        transport.close()
        await protocol.lost

    run(loop, main())


def test_write_during_sendfile_is_refused(loop, body_file):
    body, file = body_file

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        reader = loop.run_in_executor(None, slow_reader, peer)
        task = asyncio.ensure_future(loop.sendfile(transport, file))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.write(b"x")
        assert await task == len(body)
        transport.close()
        await protocol.lost
        got = await reader
        peer.close()
        return got

    got, _ = run(loop, main())
    assert got == body


@pytest.mark.parametrize(
    "offset, count, error",
    [(-1, None, ValueError), ("0", None, TypeError), (0, 0, ValueError), (0, 1.5, TypeError)],
)
def test_bad_arguments_get_asyncio_errors(loop, body_file, offset, count, error):
    _, file = body_file

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        with pytest.raises(error):
            await loop.sendfile(transport, file, offset, count)
        transport.close()
        await protocol.lost
        peer.close()

    run(loop, main())


def test_abort_as_sendfile_starts_ends_it_with_connection_error(body_file):
    # pyloop only: asyncio's own loop leaves this sendfile waiting forever
    # (the socket it waits on for writability is closed under it).
    _, file = body_file
    loop = pyloop.new_event_loop()
    handled = []
    loop.set_exception_handler(lambda loop, context: handled.append(context))

    async def main():
        transport, protocol, peer = await connected_pair(loop)
        task = asyncio.ensure_future(loop.sendfile(transport, file))
        loop.call_soon(transport.abort)  # in the iteration the send is handed over
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 5)
        await protocol.lost
        peer.close()

    try:
        run(loop, main())
    finally:
        loop.close()
    assert handled == []  # once an InvalidStateError from the sendfile's empty-buffer waiter


def sock_pair():
    ours, peer = tcp_pair()
    ours.setblocking(False)
    return ours, peer


def test_sock_sendfile_sends_the_span_between_other_sends(loop, body_file):
    body, file = body_file

    async def main():
        ours, peer = sock_pair()
        reader = loop.run_in_executor(None, slow_reader, peer)
        await loop.sock_sendall(ours, b"head")
        sent = await loop.sock_sendfile(ours, file, offset=1000, count=5 << 20)
        position = file.tell()
        await loop.sock_sendall(ours, b"tail")
        ours.shutdown(socket.SHUT_WR)
        got = await reader
        ours.close()
        peer.close()
        return sent, position, got

    (sent, position, got), io_sends = run(loop, main())
    assert sent == 5 << 20
    assert position == 1000 + (5 << 20)
    assert got == b"head" + body[1000 : 1000 + (5 << 20)] + b"tail"
    if isinstance(loop, pyloop.Loop) and _native.io_stats()["threads"]:
        assert io_sends > 0


def test_cancelled_sock_sendfile_stops_and_sends_follow(loop, body_file):
    body, file = body_file

    async def main():
        ours, peer = sock_pair()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        task = asyncio.ensure_future(loop.sock_sendfile(ours, file, offset=100))
        await asyncio.sleep(0.05)  # the socket is full, the peer does not read
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        position = file.tell()
        reader = loop.run_in_executor(None, slow_reader, peer, 0)
        await loop.sock_sendall(ours, b"after")
        ours.shutdown(socket.SHUT_WR)
        got = await reader
        ours.close()
        peer.close()
        return position, got

    (position, got), _ = run(loop, main())
    assert position == 0  # asyncio leaves the file position alone when cancelled
    assert_prefix_then_after(got, body, 100)


def test_sock_sendfile_to_a_vanished_peer_raises(loop, body_file):
    _, file = body_file

    async def main():
        ours, peer = sock_pair()
        task = asyncio.ensure_future(loop.sock_sendfile(ours, file))
        await asyncio.sleep(0.05)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        peer.close()  # a reset
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)
        ours.close()

    run(loop, main())


def test_sock_sendfile_of_nothing_and_of_no_file(loop):
    async def main():
        ours, peer = sock_pair()
        with tempfile.TemporaryFile() as empty:
            assert await loop.sock_sendfile(ours, empty) == 0
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(ours, object(), fallback=False)
        ours.close()
        peer.close()

    run(loop, main())
