"""Real frameworks on pyloop and on asyncio's loop: uvicorn serving a
Starlette app (started as users start it, stopped by SIGINT and SIGTERM),
aiohttp's server and client, websockets' server and client, and httpx's
AsyncClient. Every byte sent is compared, and no fd is left open."""

import asyncio
import http.client
import random
import signal
import socket
import subprocess
import sys

import pytest
from conftest import fd_count

pytestmark = pytest.mark.timeout(120)


def payloads(count, largest, seed=1):
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, largest)) for _ in range(count)]


def run_clean(loop, coro):
    """Runs coro on loop; asserts it left no fd open."""
    before = fd_count()
    result = loop.run_until_complete(coro)
    assert fd_count() == before
    return result


# --- uvicorn + Starlette -------------------------------------------------------

STARLETTE_APP = """
import asyncio
import contextlib
import sys

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def loop_name(request):
    return PlainTextResponse(type(asyncio.get_running_loop()).__module__)


async def echo(request):
    return Response(await request.body())


@contextlib.asynccontextmanager
async def lifespan(app):
    print("lifespan: started", flush=True)
    yield
    print("lifespan: stopped", flush=True)


app = Starlette(routes=[Route("/loop", loop_name), Route("/echo", echo, methods=["POST"])],
                lifespan=lifespan)
"""


def serve_with_uvicorn(tmp_path, loop_option, stop_signal):
    """Starts uvicorn on a listening socket it is handed, checks requests,
    stops it with stop_signal; returns (loop module, exit status, output)."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    (tmp_path / "app.py").write_text(STARLETTE_APP)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(tmp_path), "--fd", str(listener.fileno()),
         "--loop", loop_option, "--log-level", "info", "app:app"],
        pass_fds=[listener.fileno()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=tmp_path,  # not the repository root, whose source folder would shadow pyloop
    )
    listener.close()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/loop")  # the backlog holds it until uvicorn serves
        response = connection.getresponse()
        assert response.status == 200
        loop_module = response.read().decode()
        for body in payloads(50, 100_000):
            connection.request("POST", "/echo", body=body)  # one keep-alive connection
            response = connection.getresponse()
            assert response.read() == body
        connection.close()
        server.send_signal(stop_signal)
        output, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return loop_module, server.returncode, output.decode()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_uvicorn_serves_starlette_on_pyloop_and_stops_as_on_asyncio(tmp_path, stop_signal):
    on_asyncio = serve_with_uvicorn(tmp_path, "asyncio", stop_signal)
    on_pyloop = serve_with_uvicorn(tmp_path, "pyloop:new_event_loop", stop_signal)
    assert on_asyncio[0] == "asyncio.unix_events"
    assert on_pyloop[0] == "pyloop._loop"
    assert on_pyloop[1] == on_asyncio[1]  # the same exit status
    for _, _, output in (on_asyncio, on_pyloop):
        for line in ("lifespan: started", "Application startup complete", "Shutting down",
                     "lifespan: stopped", "Finished server process"):
            assert line in output, output
        assert "Traceback" not in output, output


# --- aiohttp -------------------------------------------------------------------

def test_aiohttp_server_and_client(loop):
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    async def echo(request):
        return web.Response(body=await request.read())

    async def main():
        app = web.Application(client_max_size=1 << 22)
        app.router.add_post("/echo", echo)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                async def post(body):
                    async with session.post(f"http://127.0.0.1:{port}/echo", data=body) as response:
                        assert response.status == 200
                        return await response.read()

                bodies = payloads(60, 1 << 20)
                for body in bodies[:20]:
                    assert await post(body) == body
                assert await asyncio.gather(*map(post, bodies[20:])) == bodies[20:]
        finally:
            await runner.cleanup()

    run_clean(loop, main())


# --- websockets ----------------------------------------------------------------

def test_websockets_server_and_client(loop):
    pytest.importorskip("websockets")
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    async def main():
        messages = [m if i % 2 else m.hex() for i, m in enumerate(payloads(2000, 5000))]
        async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", max_size=None) as websocket:
                for message in messages[:1000]:  # one at a time
                    await websocket.send(message)
                    assert await websocket.recv() == message

                async def send_all():
                    for message in messages[1000:]:
                        await websocket.send(message)

                sender = asyncio.create_task(send_all())  # and pipelined
                for message in messages[1000:]:
                    assert await websocket.recv() == message
                await sender

    run_clean(loop, main())


# --- httpx ---------------------------------------------------------------------

async def serve_http_echo(reader, writer):
    """A small HTTP/1.1 echo server on asyncio's streams, keep-alive."""
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            body = await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()
        await writer.wait_closed()


def test_httpx_async_client(loop):
    httpx = pytest.importorskip("httpx")

    async def main():
        server = await asyncio.start_server(serve_http_echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/"
        async with server:
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                bodies = payloads(80, 300_000)
                for body in bodies[:30]:
                    assert (await client.post(url, content=body)).content == body
                responses = await asyncio.gather(*(client.post(url, content=b) for b in bodies[30:]))
                assert [r.content for r in responses] == bodies[30:]

    run_clean(loop, main())
