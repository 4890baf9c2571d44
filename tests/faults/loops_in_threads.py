"""8 loops in 8 threads (in parallel where the GIL is off), each moving
checksummed data both ways between a server and a client of its own."""

import asyncio
import hashlib
import random
import sys
import threading

from faults.measure import fd_count
from faults.run import new_loop

LOOPS = 8
EACH_WAY = 4 << 20


async def exchange(seed):
    rng = random.Random(seed)
    payloads = [rng.randbytes(EACH_WAY), rng.randbytes(EACH_WAY)]
    ends = []
    server = await asyncio.start_server(lambda r, w: ends.append((r, w)), "127.0.0.1", 0)
    ends.append(await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1]))
    while len(ends) < 2:
        await asyncio.sleep(0.001)

    async def send(writer, payload):
        at = 0
        while at < len(payload):
            size = rng.randint(1, 256 << 10)
            writer.write(payload[at: at + size])
            at += size
            await writer.drain()
        writer.write_eof()

    async def digest(reader):
        return hashlib.sha256(await reader.read()).digest()

    got = await asyncio.gather(*(send(w, p) for (_, w), p in zip(ends, payloads)),
                               *(digest(r) for r, _ in ends))
    assert got[2:] == [hashlib.sha256(p).digest() for p in reversed(payloads)]
    for _, writer in ends:
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def main(loop, kind):
    before = fd_count()
    failures = []

    def thread_main(i):
        own = new_loop(kind)
        try:
            own.run_until_complete(asyncio.wait_for(exchange(i), 60))
        except BaseException as exc:
            failures.append(repr(exc))
        finally:
            own.close()

    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(LOOPS)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):  # this loop stays responsive meanwhile
        await asyncio.sleep(0.01)
    assert not failures, failures
    after = fd_count()
    assert after == before, (before, after)
    return {"loops": LOOPS, "bytes_compared": LOOPS * 2 * EACH_WAY, "gil": sys._is_gil_enabled(),
            "fds_before": before, "fds_after": after}
