"""Echo servers for the echo benchmark, one per mode, on any loop:

    python bench/echo_server.py LOOP MODE [THREADS]

MODE: raw (sock_accept/sock_recv/sock_sendall), stream (asyncio streams),
proto (asyncio.Protocol), buffered (asyncio.BufferedProtocol), tls
(asyncio.Protocol over TLS, with the self-signed certificate CPython ships
for its own tests) or udp (asyncio.DatagramProtocol). Listens on an
ephemeral port of 127.0.0.1, prints "ready PORT" and serves until killed.
A loop that lacks what a mode needs prints "unsupported: WHY" and exits 3.

THREADS (default 1) runs that many loops, each in its own thread and each
with its own listening socket on the same port (SO_REUSEPORT: the kernel
spreads the connections among them), for the scaling benchmark
(bench/scaling.py): on free-threaded CPython with the GIL off the loops
run in parallel.
"""

import asyncio
import functools
import pathlib
import socket
import ssl
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import servers

READ_SIZE = 256 * 1024


async def raw_server(loop, port=0, reuse_port=False):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    listener.setblocking(False)

    async def serve(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                while data := await loop.sock_recv(conn, READ_SIZE):
                    await loop.sock_sendall(conn, data)
            except ConnectionError:
                pass  # the client resets its connections when it stops

    async def accept_forever():
        while True:
            conn, _ = await loop.sock_accept(listener)
            loop.create_task(serve(conn))

    loop.create_task(accept_forever())
    return listener.getsockname()[1]


async def stream_server(loop, port=0, reuse_port=False):
    async def serve(reader, writer):
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := await reader.read(READ_SIZE):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the client resets its connections when it stops
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_port=reuse_port)
    return server.sockets[0].getsockname()[1]


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    def connection_made(self, transport):
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        self.transport.write(self.view[:nbytes])


async def protocol_server(loop, factory, tls=None, port=0, reuse_port=False):
    server = await loop.create_server(factory, "127.0.0.1", port, ssl=tls, reuse_port=reuse_port)
    return server.sockets[0].getsockname()[1]


def server_tls_context():
    certificate = pathlib.Path(ssl.__file__).parent / "test" / "certdata" / "keycert.pem"
    if not certificate.exists():
        raise NotImplementedError(f"no test certificate at {certificate}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate)
    return context


class EchoDatagramProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def datagram_server(loop, port=0, reuse_port=False):
    transport, _ = await loop.create_datagram_endpoint(EchoDatagramProtocol, local_addr=("127.0.0.1", port),
                                                       reuse_port=reuse_port)
    return transport.get_extra_info("sockname")[1]


MODES = {
    "raw": raw_server,
    "stream": stream_server,
    "proto": functools.partial(protocol_server, factory=EchoProtocol),
    "buffered": functools.partial(protocol_server, factory=EchoBufferedProtocol),
    "tls": lambda loop, **where: protocol_server(loop, EchoProtocol, server_tls_context(), **where),
    "udp": datagram_server,
}


def main():
    name, mode = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if threads == 1:
        servers.serve(name, MODES[mode])
    else:
        servers.serve_in_threads(name, MODES[mode], threads)


if __name__ == "__main__":
    main()
