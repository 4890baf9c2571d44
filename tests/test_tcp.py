"""TCP and Unix stream transports, servers and asyncio streams."""

import asyncio
import hashlib
import random
import socket
import time

import pytest
from conftest import fd_count

pytestmark = pytest.mark.timeout(30)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoBuffered(asyncio.BufferedProtocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray(65536)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.transport.write(bytes(self.buf[:nbytes]))


@pytest.mark.parametrize("protocol", [Echo, EchoBuffered])
def test_echo_server_keeps_every_byte(loop, protocol):
    rng = random.Random(11)
    chunks = [rng.randbytes(rng.choice([1, 100, 4096, 100_000])) for _ in range(80)]
    payload = b"".join(chunks)

    async def main():
        server = await loop.create_server(protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def read_all():
            digest, got = hashlib.sha256(), 0
            while got < len(payload):
                data = await reader.read(65536)
                assert data
                digest.update(data)
                got += len(data)
            return digest.hexdigest()

        task = asyncio.ensure_future(read_all())
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        digest = await task
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return digest

    before = fd_count()
    assert loop.run_until_complete(main()) == hashlib.sha256(payload).hexdigest()
    assert fd_count() == before


def test_connection_refused(loop):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    before = fd_count()
    with pytest.raises(ConnectionRefusedError):
        loop.run_until_complete(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
    assert fd_count() == before


def test_eof_and_connection_lost(loop):
    events = []
    done = loop.create_future()

    class Client(asyncio.Protocol):
        def connection_made(self, transport):
            transport.write(b"hi")
            transport.write_eof()

        def data_received(self, data):
            events.append(("data", data))

        def eof_received(self):
            events.append("eof")

        def connection_lost(self, exc):
            events.append(("lost", exc))
            done.set_result(None)

    class Server(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data.upper())

        def eof_received(self):
            return False  # close our side too

    async def main():
        server = await loop.create_server(Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(Client, "127.0.0.1", port)
        await done
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    assert events == [("data", b"HI"), "eof", ("lost", None)]


def test_write_after_close_is_ignored(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        transport.close()
        assert transport.is_closing()
        transport.write(b"late")  # asyncio counts it and logs after a few; no exception
        with pytest.raises(TypeError):
            transport.write("not bytes")
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_flow_control_pauses_writer(loop):
    paused = []

    server_side = []

    class Slow(asyncio.Protocol):
        def connection_made(self, transport):
            server_side.append(transport)
            transport.pause_reading()  # never reads: the client's buffer fills

    class Writer(asyncio.Protocol):
        def pause_writing(self):
            paused.append(True)

    async def main():
        server = await loop.create_server(Slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(Writer, "127.0.0.1", port)
        transport.set_write_buffer_limits(high=64 * 1024)
        for _ in range(200):
            transport.write(b"x" * 65536)
            await asyncio.sleep(0)
            if paused:
                break
        size = transport.get_write_buffer_size()
        transport.abort()
        server_side[0].abort()
        server.close()
        await server.wait_closed()
        return size

    size = loop.run_until_complete(main())
    assert paused == [True]
    assert size > 64 * 1024


def test_unix_stream_server(loop, tmp_path):
    path = str(tmp_path / "sock")

    async def main():
        server = await asyncio.start_unix_server(
            lambda r, w: (w.write(b"pong"), w.close()), path)
        reader, writer = await asyncio.open_unix_connection(path)
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return data

    assert loop.run_until_complete(main()) == b"pong"


def test_extra_info(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        transport, _ = await loop.create_connection(asyncio.Protocol, *addr)
        info = (transport.get_extra_info("peername"), transport.get_extra_info("sockname"),
                transport.get_extra_info("socket").family)
        transport.close()
        server.close()
        await server.wait_closed()
        return addr, info

    addr, (peer, sockname, family) = loop.run_until_complete(main())
    assert peer == addr
    assert sockname[0] == "127.0.0.1"
    assert family == socket.AF_INET


def test_pyloop_data_received_chunks_stay_at_most_256k():
    # pyloop reads 64 KiB at a time, and when a read fills that, what else
    # the kernel holds, up to 256 KiB in all: never one huge bytes object.
    import pyloop

    loop = pyloop.new_event_loop()
    sizes = []
    done = loop.create_future()

    class Sink(asyncio.Protocol):
        def data_received(self, data):
            sizes.append(len(data))
            if sum(sizes) >= 1_000_000:
                done.set_result(None)

    async def main():
        server = await loop.create_server(Sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x" * 1_000_000)
        await done
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    loop.close()
    assert sum(sizes) == 1_000_000
    assert max(sizes) <= 256 * 1024


def _served(loop, protocol_factory, client_actions):
    """Runs a server with protocol_factory and a stream client that performs
    client_actions(reader, writer); returns what the client returns."""

    async def main():
        server = await loop.create_server(protocol_factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await client_actions(reader, writer)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    return loop.run_until_complete(main())


@pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
def test_write_accepts_bytes_like_objects(loop, kind):
    payload = bytes(range(256)) * 40

    class Sender(asyncio.Protocol):
        def connection_made(self, transport):
            if kind == "bytearray":
                transport.write(bytearray(payload))
            else:
                transport.write(memoryview(payload))
            transport.close()

    async def client(reader, writer):
        return await reader.read()

    assert _served(loop, Sender, client) == payload


@pytest.mark.parametrize("failing", ["data_received", "get_buffer", "empty_buffer", "buffer_updated"])
def test_protocol_errors_close_the_connection_and_are_reported(loop, failing):
    lost = []
    errors = []
    loop.set_exception_handler(lambda loop, ctx: errors.append(ctx.get("exception")))

    class Plain(asyncio.Protocol):
        def data_received(self, data):
            raise ValueError("data_received failed")

        def connection_lost(self, exc):
            lost.append(exc)

    class Buffered(asyncio.BufferedProtocol):
        def get_buffer(self, sizehint):
            if failing == "get_buffer":
                raise ValueError("get_buffer failed")
            return bytearray(0 if failing == "empty_buffer" else 100)

        def buffer_updated(self, nbytes):
            raise ValueError("buffer_updated failed")

        def connection_lost(self, exc):
            lost.append(exc)

    async def client(reader, writer):
        writer.write(b"x")
        try:
            return await reader.read()  # the server side closes ...
        except ConnectionResetError:
            return b""  # ... or resets, when our byte was still unread

    factory = Plain if failing == "data_received" else Buffered
    assert _served(loop, factory, client) == b""
    assert len(lost) == 1 and lost[0] is not None
    expected = RuntimeError if failing == "empty_buffer" else ValueError
    assert [type(e) for e in errors] == [expected]


def test_writes_queue_up_when_the_peer_does_not_read(loop):
    sizes = []

    class Writer(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            transport.set_write_buffer_limits(high=1 << 30)  # never pause: observe the buffer
            for _ in range(64):
                transport.write(b"y" * 65536)
            sizes.append(transport.get_write_buffer_size())

    async def client(reader, writer):
        await asyncio.sleep(0.05)  # let the kernel buffers fill
        got = 0
        while got < 64 * 65536:
            data = await reader.read(1 << 20)
            assert data
            got += len(data)
        return got

    assert _served(loop, Writer, client) == 64 * 65536
    assert sizes and sizes[0] > 0


def test_data_received_while_the_loop_was_stopped_comes_after_queued_callbacks(loop):
    # asyncio queues the read callback behind what is already queued, and so
    # must pyloop when its I/O thread read the data meanwhile.
    order = []

    class Protocol(asyncio.Protocol):
        def data_received(self, data):
            order.append("data")

    ours, peer = socket.socketpair()
    transport, _ = loop.run_until_complete(loop.create_connection(Protocol, sock=ours))
    peer.sendall(b"x")
    time.sleep(0.05)  # the loop is not running: an I/O thread reads it now
    loop.call_soon(order.append, "callback")
    loop.run_until_complete(asyncio.sleep(0.05))
    transport.close()
    peer.close()
    loop.run_until_complete(asyncio.sleep(0))
    assert order == ["callback", "data"]
