"""Tens of MB each way at once through one connection, in random write sizes
from 1 B to 1 MiB, through a Protocol, a BufferedProtocol (reading into
buffers of random size) or streams. Both ends honour flow control; every
pause_writing must come with the buffer above the high-water mark and every
resume_writing with it at or below the low one. SHA-256 of each direction is
compared."""

import asyncio
import hashlib
import random

from faults.measure import fd_count

TOTAL = 24 << 20  # each way
HIGH, LOW = 256 << 10, 64 << 10


def write_sizes(rng, total):
    """Log-uniform from 1 B to 1 MiB, so tiny and large writes both come often."""
    while total:
        size = min(total, int(2 ** rng.uniform(0, 20)))
        total -= size
        yield size


class End(asyncio.BufferedProtocol):
    """One end of the connection; `buffered` picks which read interface the
    loop sees (get_buffer/buffer_updated, or data_received)."""

    def __init__(self, loop, buffered, rng):
        if not buffered:  # the loop looks for get_buffer to tell the kinds apart
            self.data_received = self._data_received
        self.rng = rng
        self.buffer = bytearray(64 << 10)
        self.digest = hashlib.sha256()
        self.received = 0
        self.writable = asyncio.Event()
        self.writable.set()
        self.pauses = self.resumes = 0
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(HIGH, LOW)

    def pause_writing(self):
        assert self.transport.get_write_buffer_size() > HIGH
        self.pauses += 1
        self.writable.clear()

    def resume_writing(self):
        assert self.transport.get_write_buffer_size() <= LOW
        self.resumes += 1
        self.writable.set()

    def get_buffer(self, sizehint):
        return memoryview(self.buffer)[: self.rng.randint(1, len(self.buffer))]

    def buffer_updated(self, nbytes):
        self._data_received(self.buffer[:nbytes])

    def _data_received(self, data):
        self.digest.update(data)
        self.received += len(data)

    def eof_received(self):
        self.eof.set_result(None)
        return True  # this end may still be writing

    def connection_lost(self, exc):
        self.lost.set_result(exc)

    async def send(self, payload):
        view, at = memoryview(payload), 0
        for size in write_sizes(self.rng, len(payload)):
            await self.writable.wait()
            self.transport.write(view[at: at + size])
            at += size
        self.transport.write_eof()


async def over_protocols(loop, buffered, payloads, rng):
    ends = []

    def make_end():
        ends.append(End(loop, buffered, random.Random(rng.random())))
        return ends[-1]

    server = await loop.create_server(make_end, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await loop.create_connection(make_end, "127.0.0.1", port)
    while len(ends) < 2:
        await asyncio.sleep(0.001)
    await asyncio.gather(*(end.send(p) for end, p in zip(ends, payloads)), *(end.eof for end in ends))
    for end in ends:
        end.transport.close()
    assert await asyncio.gather(*(end.lost for end in ends)) == [None, None]
    server.close()
    await server.wait_closed()
    for end, payload in zip(ends, reversed(payloads)):
        assert end.received == len(payload) and end.digest.digest() == hashlib.sha256(payload).digest()
        assert end.pauses > 0 and end.resumes == end.pauses, (end.pauses, end.resumes)
    return sum(end.pauses for end in ends)


async def over_streams(loop, payloads, rng):
    ends = []
    server = await asyncio.start_server(lambda r, w: ends.append((r, w)), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ends.append(await asyncio.open_connection("127.0.0.1", port))
    while len(ends) < 2:
        await asyncio.sleep(0.001)
    pauses = 0

    async def send(writer, payload, rng):
        nonlocal pauses
        writer.transport.set_write_buffer_limits(HIGH, LOW)
        view, at = memoryview(payload), 0
        for size in write_sizes(rng, len(payload)):
            writer.write(view[at: at + size])
            at += size
            if writer.transport.get_write_buffer_size() > HIGH:
                pauses += 1  # the protocol is paused: drain must wait for the low-water mark
                await writer.drain()
                assert writer.transport.get_write_buffer_size() <= LOW
        writer.write_eof()

    async def receive(reader, rng):
        digest, size = hashlib.sha256(), 0
        while data := await reader.read(rng.randint(1, 1 << 20)):
            digest.update(data)
            size += len(data)
        return size, digest.digest()

    rngs = [random.Random(rng.random()) for _ in range(4)]
    results = await asyncio.gather(*(send(w, p, r) for (_, w), p, r in zip(ends, payloads, rngs)),
                                   *(receive(r, g) for (r, _), g in zip(ends, rngs[2:])))
    for (size, digest), payload in zip(results[2:], reversed(payloads)):
        assert size == len(payload) and digest == hashlib.sha256(payload).digest()
    assert pauses > 0
    for _, writer in ends:
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return pauses


async def main(loop, kind, mode):
    rng = random.Random(mode)
    before = fd_count()
    payloads = [rng.randbytes(TOTAL), rng.randbytes(TOTAL)]
    if mode == "streams":
        pauses = await over_streams(loop, payloads, rng)
    else:
        pauses = await over_protocols(loop, mode == "buffered", payloads, rng)
    await asyncio.sleep(0)
    after = fd_count()
    assert after == before, (before, after)
    return {"mode": mode, "bytes_each_way": TOTAL, "pauses": pauses, "fds_before": before, "fds_after": after}
