"""What a transport holds goes with it: once a closed transport is freed,
its write buffer and cached addresses are freed too. (A read-only native
member is skipped when CPython frees a subclass instance, which leaked the
write buffer of every connection that ever had one.)"""

import asyncio
import gc
import socket
import struct
import sys
import weakref

import pyloop


def test_a_freed_stream_transport_frees_its_write_buffer(loop):
    # Server transports in the middle of a large write when their clients
    # reset the connection; twenty of them, since whether a buffer is still
    # attached when the transport goes depends on the timing.
    buffers, lost = [], []

    class Server(asyncio.Protocol):
        def connection_made(self, transport):
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            transport.write(b"x" * (1 << 20))  # more than the socket takes: the rest is buffered
            buffers.append(weakref.ref(transport._buffer))

        def connection_lost(self, exc):
            lost.append(type(exc))  # not exc: asyncio's traceback would keep the transport

    async def reset_one(address):
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, address)
        while len(buffers) < len(lost) + 1:  # until the server has written
            await asyncio.sleep(0.001)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        while len(lost) < len(buffers):
            await asyncio.sleep(0.001)

    async def main():
        server = await loop.create_server(Server, "127.0.0.1", 0)
        for _ in range(20):
            await reset_one(server.sockets[0].getsockname())
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    gc.collect()
    assert lost == [ConnectionResetError] * 20
    assert [b for b in buffers if b() is not None] == []


def test_a_freed_datagram_transport_frees_the_addresses_it_cached(loop):
    received = []

    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            received.append(addr)

    async def main():
        transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"x", transport.get_extra_info("sockname"))
        while not received:
            await asyncio.sleep(0.001)
        with_transport = sys.getrefcount(received[0])
        sender.close()
        transport.close()
        await asyncio.sleep(0.01)
        return with_transport

    with_transport = loop.run_until_complete(main())
    loop.close()  # drops the loop's last references to the transport
    gc.collect()
    # pyloop's transport keeps the last sender's address to hand out again;
    # asyncio's makes a new tuple per datagram.
    cached = 1 if isinstance(loop, pyloop.Loop) else 0
    released = with_transport - sys.getrefcount(received[0])  # outside the assert, which holds its operands
    assert released == cached
