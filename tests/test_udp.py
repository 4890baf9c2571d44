"""Datagram endpoints: pyloop's native receive and sendto paths against
asyncio's own loop (addresses, errors, ordering, flow of control)."""

import asyncio
import socket
import time

import pytest
from conftest import fd_count

import pyloop
from pyloop import _native

pytestmark = pytest.mark.timeout(30)


class Recorder(asyncio.DatagramProtocol):
    """Keeps what it receives; on_datagram(self, data, addr) runs for each."""

    def __init__(self, on_datagram=None):
        self.datagrams = asyncio.Queue()
        self.errors = []
        self.on_datagram = on_datagram
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.datagrams.put_nowait((data, addr))
        if self.on_datagram:
            self.on_datagram(self, data, addr)

    def error_received(self, exc):
        self.errors.append(exc)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def endpoint(on_datagram=None, **kwargs):
    loop = asyncio.get_running_loop()
    kwargs.setdefault("local_addr", ("127.0.0.1", 0))
    return await loop.create_datagram_endpoint(lambda: Recorder(on_datagram), **kwargs)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_datagrams_arrive_whole_with_the_socket_modules_address(loop, host):
    async def main():
        server, received = await endpoint(local_addr=(host, 0))
        client, _ = await endpoint(local_addr=(host, 0))
        for data in (b"", b"x", bytes(range(256)) * 200, bytearray(b"bytearray"), memoryview(b"--view--")[2:6]):
            client.sendto(data, server.get_extra_info("sockname"))
            got, addr = await received.datagrams.get()
            assert got == bytes(data) and type(got) is bytes
            assert addr == client.get_extra_info("sockname")  # (host, port[, flowinfo, scope_id])
        client.close()
        server.close()

    loop.run_until_complete(main())


def test_a_burst_arrives_in_order_and_complete(loop):
    async def main():
        server, received = await endpoint()
        client, _ = await endpoint()
        for i in range(200):  # more than one readiness' batch
            client.sendto(i.to_bytes(4, "big"), server.get_extra_info("sockname"))
        got = [int.from_bytes((await received.datagrams.get())[0], "big") for _ in range(200)]
        assert got == list(range(200))
        client.close()
        server.close()

    loop.run_until_complete(main())


def test_pause_and_close_inside_datagram_received_stop_delivery(loop):
    async def main():
        server, received = await endpoint(on_datagram=lambda p, data, addr: p.transport.pause_reading())
        client, _ = await endpoint()
        target = server.get_extra_info("sockname")
        for i in range(5):
            client.sendto(bytes([i]), target)
        assert (await received.datagrams.get())[0] == b"\x00"
        await asyncio.sleep(0.05)
        assert received.datagrams.empty()  # paused after the first one
        received.on_datagram = None
        server.resume_reading()
        got = [(await received.datagrams.get())[0] for _ in range(4)]
        assert got == [b"\x01", b"\x02", b"\x03", b"\x04"]

        closing, closed = await endpoint(on_datagram=lambda p, data, addr: p.transport.close())
        for i in range(5):
            client.sendto(bytes([i]), closing.get_extra_info("sockname"))
        assert await closed.lost is None
        assert closed.datagrams.qsize() == 1
        client.close()
        server.close()

    loop.run_until_complete(main())


def test_echo_to_the_address_received(loop):
    async def main():
        server, _ = await endpoint(on_datagram=lambda p, data, addr: p.transport.sendto(data.upper(), addr))
        clients = [await endpoint() for _ in range(3)]
        for i, (client, _) in enumerate(clients):
            client.sendto(b"ping%d" % i, server.get_extra_info("sockname"))
        for i, (client, received) in enumerate(clients):
            assert await received.datagrams.get() == (b"PING%d" % i, server.get_extra_info("sockname"))
            client.close()
        server.close()

    loop.run_until_complete(main())


def test_connected_endpoint_sends_to_its_peer_only(loop):
    async def main():
        server, received = await endpoint()
        client, _ = await endpoint(local_addr=None, remote_addr=server.get_extra_info("sockname"))
        client.sendto(b"one")
        client.sendto(b"two", server.get_extra_info("sockname"))
        assert [(await received.datagrams.get())[0] for _ in range(2)] == [b"one", b"two"]
        with pytest.raises(ValueError, match="Invalid address: must be None or"):
            client.sendto(b"x", ("127.0.0.1", 9))
        client.close()
        server.close()

    loop.run_until_complete(main())


def test_sendto_errors_are_asyncios(loop):
    async def main():
        server, _ = await endpoint()
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
            server.sendto("text", ("127.0.0.1", 9))
        with pytest.raises(TypeError):
            server.sendto()
        # A refused peer: ICMP comes back as ECONNREFUSED on the next call, to error_received.
        refused, protocol = await endpoint(local_addr=None, remote_addr=("127.0.0.1", 1))
        refused.sendto(b"a")
        await asyncio.sleep(0.05)
        refused.sendto(b"b")
        await asyncio.sleep(0.05)
        assert protocol.errors and all(isinstance(e, ConnectionRefusedError) for e in protocol.errors)
        assert not refused.is_closing()
        refused.close()
        # A port out of range is a fatal error of the transport, as in asyncio.
        loop = asyncio.get_running_loop()
        seen = []
        loop.set_exception_handler(lambda loop, context: seen.append(context))
        server.sendto(b"x", ("127.0.0.1", 70000))
        assert server.is_closing()
        assert isinstance(seen[0]["exception"], OverflowError)
        server.sendto(b"after close", ("127.0.0.1", 9))  # dropped, not raised

    loop.run_until_complete(main())


def test_names_and_other_families_take_asyncios_path(loop, tmp_path):
    async def main():
        server, received = await endpoint()
        client, _ = await endpoint()
        client.sendto(b"by name", ("localhost", server.get_extra_info("sockname")[1]))
        assert (await received.datagrams.get())[0] == b"by name"
        client.close()
        server.close()

        path = str(tmp_path / "dgram")
        unix_server, unix_received = await endpoint(local_addr=path, family=socket.AF_UNIX)
        unix_client, _ = await endpoint(local_addr=None, remote_addr=path, family=socket.AF_UNIX)
        unix_client.sendto(b"u" * 100_000)  # larger than any IP datagram
        data, addr = await unix_received.datagrams.get()
        assert len(data) == 100_000 and addr is None
        unix_client.close()
        unix_server.close()

    loop.run_until_complete(main())


def test_no_fd_left_behind(loop):
    async def main():
        for _ in range(20):
            server, _ = await endpoint()
            client, _ = await endpoint(remote_addr=server.get_extra_info("sockname"))
            client.sendto(b"x")
            client.close()
            server.close()
        await asyncio.sleep(0)

    before = fd_count()
    loop.run_until_complete(main())
    assert fd_count() == before


# While the loop is busy in Python, pyloop's I/O thread receives (the
# suite's setting: one I/O thread, see conftest.py): what the protocol
# gets must not change.


def send_from_thread(payloads, address, delay=0.05, gap=0.0):
    """Sends payloads to address from another thread: the first after
    `delay`, the rest `gap` later (once the first has made the loop busy)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        time.sleep(delay)
        for i, payload in enumerate(payloads):
            if i == 1:
                time.sleep(gap)
            sock.sendto(payload, address)
        return sock.getsockname()


def busy_once(protocol, data, addr):
    if not hasattr(protocol, "was_busy"):
        protocol.was_busy = True
        time.sleep(0.3)  # the datagrams arrive meanwhile


def test_datagrams_received_while_the_loop_is_busy_keep_order_and_sender(loop):
    payloads = [b"first"] + [i.to_bytes(2, "big") * (i % 300) for i in range(200)]

    async def main():
        server, received = await endpoint(busy_once)
        reads_before = _native.io_stats()["reads"]
        address = server.get_extra_info("sockname")
        # The first datagram keeps the loop busy for 0.3 s; the rest arrive then.
        sender = await loop.run_in_executor(None, send_from_thread, payloads, address, 0, 0.1)
        got = []
        while len(got) < len(payloads):
            got.append(await asyncio.wait_for(received.datagrams.get(), 5))
        server.close()
        return got, sender, _native.io_stats()["reads"] - reads_before

    got, sender, io_reads = loop.run_until_complete(main())
    assert [data for data, _ in got] == payloads
    assert all(addr == sender for _, addr in got[1:])
    if isinstance(loop, pyloop.Loop) and _native.io_stats()["threads"]:
        assert io_reads > 0


def test_pause_reading_holds_what_the_io_thread_received(loop):
    payloads = [b"%d" % i for i in range(100)]
    paused_at = []

    def pause_at_ten(protocol, data, addr):
        busy_once(protocol, data, addr)
        if data == b"9":
            protocol.transport.pause_reading()
            paused_at.append(protocol.datagrams.qsize())
            asyncio.get_running_loop().call_later(0.1, protocol.transport.resume_reading)

    async def main():
        server, received = await endpoint(pause_at_ten)
        reads_before = _native.io_stats()["reads"]
        address = server.get_extra_info("sockname")
        task = loop.run_in_executor(None, send_from_thread, payloads, address, 0.05, 0.1)
        got = []
        while len(got) < len(payloads):
            got.append((await asyncio.wait_for(received.datagrams.get(), 5))[0])
            if got[-1] == b"9":
                await asyncio.sleep(0.05)
                assert received.datagrams.empty() and not server.is_reading()
        await task
        server.close()
        return got, _native.io_stats()["reads"] - reads_before

    got, io_reads = loop.run_until_complete(main())
    assert got == payloads
    if isinstance(loop, pyloop.Loop) and _native.io_stats()["threads"]:
        assert io_reads > 0  # some were held for resume_reading by the loop


def test_protocol_errors_go_to_the_exception_handler_and_receiving_goes_on(loop):
    payloads = [b"a", b"boom", b"c"]
    contexts = []

    def explode(protocol, data, addr):
        busy_once(protocol, data, addr)
        if data == b"boom":
            raise ZeroDivisionError("in datagram_received")

    async def main():
        loop.set_exception_handler(lambda _, context: contexts.append(context))
        server, received = await endpoint(explode)
        reads_before = _native.io_stats()["reads"]
        address = server.get_extra_info("sockname")
        await loop.run_in_executor(None, send_from_thread, payloads, address, 0.05, 0.1)
        got = [(await asyncio.wait_for(received.datagrams.get(), 5))[0] for _ in payloads]
        server.close()
        return got, _native.io_stats()["reads"] - reads_before

    got, io_reads = loop.run_until_complete(main())
    assert got == payloads
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    if isinstance(loop, pyloop.Loop) and _native.io_stats()["threads"]:
        assert io_reads > 0  # "boom" came through the I/O thread


def test_refused_while_busy_reaches_error_received(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
            closed.bind(("127.0.0.1", 0))
            gone = closed.getsockname()
        client, received = await endpoint(remote_addr=gone, local_addr=None)
        client.sendto(b"ping")
        time.sleep(0.2)  # noqa: ASYNC251 (the refusal must arrive while the loop is busy)
        for _ in range(50):
            if received.errors:
                break
            await asyncio.sleep(0.01)
        client.close()
        return received.errors

    errors = loop.run_until_complete(main())
    assert len(errors) == 1 and isinstance(errors[0], ConnectionRefusedError)


def test_a_datagram_received_while_the_loop_was_stopped_comes_after_queued_callbacks(loop):
    # asyncio queues the read callback behind what is already queued, and so
    # must pyloop when its I/O thread received the datagram meanwhile.
    order = []

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            order.append("datagram")

    server, _ = loop.run_until_complete(loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", server.get_extra_info("sockname"))
    time.sleep(0.05)  # the loop is not running: an I/O thread receives it now
    loop.call_soon(order.append, "callback")
    loop.run_until_complete(asyncio.sleep(0.05))
    server.close()
    loop.run_until_complete(asyncio.sleep(0))
    assert order == ["callback", "datagram"]
