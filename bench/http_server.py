"""HTTP/1.1 keep-alive hello-world servers for the HTTP benchmark, on any loop:

    python -P bench/http_server.py LOOP MODE

MODE proto: a small server written against asyncio.Protocol (requests are
split at the blank line that ends their headers; pipelined requests are
answered in order; no bodies, which is all wrk sends). MODE aiohttp: the
same answer from an aiohttp.web application, to show a framework's share.
Prints "ready PORT" once listening, or "unsupported: WHY" and exits 3.
"""

import asyncio
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import servers

BODY = b"Hello, World!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class HelloProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        data = self.pending + data if self.pending else data
        answers = data.count(b"\r\n\r\n")
        if answers:
            self.transport.write(RESPONSE * answers)
            data = data[data.rfind(b"\r\n\r\n") + 4:]
        self.pending = data


async def proto_server(loop):
    server = await loop.create_server(HelloProtocol, "127.0.0.1", 0, backlog=1024)
    return server.sockets[0].getsockname()[1]


async def aiohttp_server(loop):
    try:
        from aiohttp import web
    except ImportError as exc:
        raise NotImplementedError(f"aiohttp is not installed ({exc})") from None

    async def hello(request):
        return web.Response(text=BODY.decode())

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    return site._server.sockets[0].getsockname()[1]


MODES = {"proto": proto_server, "aiohttp": aiohttp_server}


def main():
    name, mode = sys.argv[1], sys.argv[2]
    servers.serve(name, MODES[mode])


if __name__ == "__main__":
    main()
