"""Thousands of clients reset their connection (SO_LINGER 0) while the server
is in the middle of a large write to them. The server must keep serving, give
each protocol's connection_lost what asyncio's gives, report nothing to the
exception handler, and leave no fd behind; a well-behaved client at the end
still gets every byte."""

import asyncio
import collections
import gc
import hashlib
import random
import socket
import struct
import sysconfig

from faults.measure import fd_count, rss_bytes, rss_bytes_trimmed

CLIENTS = 2_000
AT_ONCE = 250
PAYLOAD = random.Random(0).randbytes(1 << 20)
SMALL_BUFFER = 32 << 10  # kernel buffers, kept small so most of the write waits in the transport
# What the second half of the clients may leave in use: fewer than 400 more
# objects of any type (a leak per connection leaves 1,000; asyncio's loop
# leaves up to about 150 tuples), and little RSS (a leaked write would take
# 1 GB). The RSS is checked on GIL builds only: the free-threaded build's
# allocator (mimalloc) sometimes keeps 100-200 MB of freed pages after this
# scenario, with no more Python objects in use.
LEAK_BOUND_OBJECTS = 400
LEAK_BOUND_MB = 16
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


class Server(asyncio.Protocol):
    live = 0
    lost = collections.Counter()

    def connection_made(self, transport):
        Server.live += 1
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        transport.write(PAYLOAD)

    def connection_lost(self, exc):
        Server.live -= 1
        Server.lost[type(exc).__name__] += 1


async def client(loop, address, rng, reset):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
        wanted = rng.randint(1, 256 << 10) if reset else len(PAYLOAD)
        digest, got = hashlib.sha256(), 0
        while got < wanted:
            data = await loop.sock_recv(sock, min(wanted - got, 64 << 10))
            assert data, "the server closed early"
            digest.update(data)
            got += len(data)
        if reset:  # close with a reset, not a FIN, while the server still has bytes to send
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return digest.digest()
    finally:
        sock.close()


def in_use():
    """Live objects the garbage collector tracks, by type, and the process's
    RSS once trimmed."""
    gc.collect()
    return collections.Counter(type(o).__name__ for o in gc.get_objects()), rss_bytes_trimmed()


async def main(loop, kind):
    reported = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    before, rss_before = fd_count(), rss_bytes()
    server = await loop.create_server(Server, "127.0.0.1", 0, backlog=AT_ONCE)
    address = server.sockets[0].getsockname()
    rng = random.Random(1)
    rss_peak = 0
    waves = CLIENTS // AT_ONCE
    for wave in range(waves):
        await asyncio.gather(*(client(loop, address, rng, reset=True) for _ in range(AT_ONCE)))
        rss_peak = max(rss_peak, rss_bytes())
        if wave == waves // 2 - 1:
            half_way = in_use()
    # What the second half of the clients left in use: caches and free
    # lists filled in the first half, so this is what leaks per connection.
    objects, rss = (b - a for a, b in zip(half_way, in_use()))
    # Still serving: a client that reads to the end gets all of it.
    assert await client(loop, address, rng, reset=False) == hashlib.sha256(PAYLOAD).digest()
    while Server.live:
        await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0)
    assert not reported, reported[:3]
    after = fd_count()
    assert after == before, (before, after)
    # As on asyncio's loop: each reset reaches its protocol as ConnectionResetError.
    assert Server.lost == {"ConnectionResetError": CLIENTS, "NoneType": 1}, Server.lost
    mb = 2**20
    figures = {"resets": CLIENTS, "connection_lost": dict(Server.lost), "fds_before": before, "fds_after": after,
               "rss_growth_peak_mb": round((rss_peak - rss_before) / mb, 1),
               "second_half_objects": objects.total(), "second_half_most_grown": objects.most_common(3), "second_half_rss_mb": round(rss / mb, 1)}
    grown = {kind: n for kind, n in objects.items() if n >= LEAK_BOUND_OBJECTS}
    assert not grown, (grown, figures)
    if not FREE_THREADED:
        assert rss < LEAK_BOUND_MB * mb, figures
    return figures
