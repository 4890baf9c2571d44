"""10,000 TCP connections open at once on one echo server. A client process
(on the same kind of loop) opens them all, then each sends random-size
messages and compares every byte of the echo. The server counts how many it
held at once, and its fds return to where they were."""

import asyncio

from faults.measure import fd_count, raise_fd_limit, run_child

CONNECTIONS = 10_000


class Echo(asyncio.Protocol):
    live = peak = served = 0

    def connection_made(self, transport):
        self.transport = transport
        Echo.live += 1
        Echo.served += 1
        Echo.peak = max(Echo.peak, Echo.live)

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        assert exc is None, exc
        Echo.live -= 1


async def main(loop, kind):
    raise_fd_limit(CONNECTIONS + 200)
    before = fd_count()
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    clients = await run_child("faults.run", "echo_clients", kind, str(port), str(CONNECTIONS), timeout=240)
    while Echo.live:  # the client closed them all; the server sees it soon after
        await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0)
    assert Echo.served == CONNECTIONS and Echo.peak == CONNECTIONS, (Echo.served, Echo.peak)
    after = fd_count()
    assert after == before, (before, after)
    return {"connections": Echo.served, "held_at_once": Echo.peak, "fds_before": before, "fds_after": after,
            **clients}
