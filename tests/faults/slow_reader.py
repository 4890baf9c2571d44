"""Slow readers: a streams server writes to each client as fast as drain()
lets it, while the clients read a little at a time. Flow control must keep
the server's buffered bytes, and so its RSS, bounded however much it sends."""

import asyncio
import hashlib
import random
import socket

from faults.measure import fd_count, rss_bytes

CLIENTS = 20
PER_CLIENT = 8 << 20
CHUNK = 64 << 10
HIGH, LOW = 256 << 10, 64 << 10
READ, READ_EVERY = 32 << 10, 0.005  # each client takes in about 6 MB/s
KERNEL_BUFFER = 64 << 10  # small, so the waiting bytes wait in the transport
PAYLOAD = random.Random(2).randbytes(PER_CLIENT)
# Growth allowed while 160 MB go out: the transports' buffers (20 x 320 KB)
# and the allocator's slack, far below what unbounded buffering would take.
RSS_BOUND_MB = 48


async def serve(reader, writer):
    writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
    writer.transport.set_write_buffer_limits(HIGH, LOW)
    view = memoryview(PAYLOAD)
    for at in range(0, PER_CLIENT, CHUNK):
        writer.write(view[at: at + CHUNK])
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def slow_client(loop, address):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
    sock.setblocking(False)
    digest, size = hashlib.sha256(), 0
    with sock:
        await loop.sock_connect(sock, address)
        while data := await loop.sock_recv(sock, READ):
            digest.update(data)
            size += len(data)
            await asyncio.sleep(READ_EVERY)
    assert size == PER_CLIENT and digest.digest() == hashlib.sha256(PAYLOAD).digest()


async def main(loop, kind):
    before, rss_before = fd_count(), rss_bytes()
    transports = []
    server = await asyncio.start_server(lambda r, w: (transports.append(w.transport), serve(r, w))[1],
                                        "127.0.0.1", 0)
    address = server.sockets[0].getsockname()
    clients = asyncio.gather(*(slow_client(loop, address) for _ in range(CLIENTS)))
    buffered_peak = rss_peak = 0
    while not clients.done():
        buffered_peak = max(buffered_peak, sum(t.get_write_buffer_size() for t in transports))
        rss_peak = max(rss_peak, rss_bytes())
        await asyncio.sleep(0.01)
    await clients
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0)
    after = fd_count()
    assert after == before, (before, after)
    # drain() returns at the low-water mark, then one chunk goes in: never more than high + chunk.
    assert buffered_peak <= CLIENTS * (HIGH + CHUNK), buffered_peak
    growth_mb = round((rss_peak - rss_before) / 2**20, 1)
    assert growth_mb < RSS_BOUND_MB, growth_mb
    return {"clients": CLIENTS, "bytes_sent": CLIENTS * PER_CLIENT, "buffered_peak_kb": buffered_peak >> 10,
            "rss_growth_peak_mb": growth_mb, "fds_before": before, "fds_after": after}
