"""TLS over pyloop's socket transport, against asyncio's own loop: every
byte through, the handshake's faults, extra info."""

import asyncio
import hashlib
import pathlib
import random
import socket
import ssl

import pytest
from conftest import fd_count

pytestmark = pytest.mark.timeout(60)

CERTIFICATE = pathlib.Path(ssl.__file__).parent / "test" / "certdata" / "keycert.pem"


def contexts():
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(CERTIFICATE)
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_echo_keeps_every_byte(loop, version):
    server_context, client_context = contexts()
    client_context.minimum_version = client_context.maximum_version = version
    rng = random.Random(7)
    chunks = [rng.randbytes(rng.choice([1, 100, 5000, 70000, 300000])) for _ in range(40)]

    async def main():
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context)
        assert writer.get_extra_info("ssl_object").version() == {
            ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        assert writer.get_extra_info("cipher") and writer.get_extra_info("sslcontext") is client_context
        assert writer.get_extra_info("peername")[1] == port

        async def send():
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        total = sum(map(len, chunks))
        received = await reader.readexactly(total)
        await sender
        assert hashlib.sha256(received).digest() == hashlib.sha256(b"".join(chunks)).digest()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    before = fd_count()
    loop.run_until_complete(main())
    assert fd_count() == before


def test_handshake_with_a_silent_peer_times_out(loop):
    _, client_context = contexts()

    async def main():
        silent = socket.create_server(("127.0.0.1", 0))  # accepts in the backlog, never answers
        try:
            with pytest.raises(ConnectionAbortedError, match="SSL handshake is taking longer than 0.3 seconds"):
                await asyncio.open_connection(*silent.getsockname(), ssl=client_context,
                                              ssl_handshake_timeout=0.3)
        finally:
            silent.close()

    before = fd_count()
    loop.run_until_complete(main())
    assert fd_count() == before


def test_handshake_with_garbage_fails_with_ssl_error(loop):
    _, client_context = contexts()

    async def garbage(reader, writer):
        await reader.read(1)
        writer.write(b"this is not TLS\r\n" * 10)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(garbage, "127.0.0.1", 0)
        with pytest.raises(ssl.SSLError):
            await asyncio.open_connection(*server.sockets[0].getsockname(), ssl=client_context)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_abrupt_peer_close_mid_stream(loop):
    server_context, client_context = contexts()

    async def main():
        transports = []

        class Abort(asyncio.Protocol):
            def connection_made(self, transport):
                transports.append(transport)

            def data_received(self, data):
                transports[0].write(b"partial")
                transports[0].abort()

        server = await asyncio.get_running_loop().create_server(Abort, "127.0.0.1", 0, ssl=server_context)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname(), ssl=client_context)
        writer.write(b"hello")
        data = await reader.read()  # EOF or whatever arrived, never a hang
        assert data in (b"", b"partial")
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_start_tls_upgrades_a_plain_connection(loop):
    server_context, client_context = contexts()

    async def main():
        async def serve(reader, writer):
            assert await reader.readline() == b"STARTTLS\n"
            # Answered before the upgrade starts (start_tls pauses reading at
            # once), so the client's handshake cannot reach the plain reader.
            writer.write(b"GO\n")
            await writer.start_tls(server_context)
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_context)
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"SECRET\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
