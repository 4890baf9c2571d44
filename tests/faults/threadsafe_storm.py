"""16 threads calling call_soon_threadsafe on one running loop at once (in
parallel where the GIL is off): no callback lost, each thread's in the order
it sent them."""

import asyncio
import sys
import threading

THREADS = 16
PER_THREAD = 20_000


async def main(loop, kind):
    received = [[] for _ in range(THREADS)]
    done = loop.create_future()
    count = 0

    def callback(thread, seq):
        nonlocal count
        received[thread].append(seq)
        count += 1
        if count == THREADS * PER_THREAD:
            done.set_result(None)

    start = threading.Barrier(THREADS)

    def producer(thread):
        start.wait()
        for seq in range(PER_THREAD):
            loop.call_soon_threadsafe(callback, thread, seq)

    producers = [threading.Thread(target=producer, args=(i,)) for i in range(THREADS)]
    for p in producers:
        p.start()
    await asyncio.wait_for(done, 60)
    for p in producers:
        p.join()
    await asyncio.sleep(0)
    assert count == THREADS * PER_THREAD, count
    assert all(r == list(range(PER_THREAD)) for r in received)
    return {"threads": THREADS, "callbacks": count, "gil": sys._is_gil_enabled()}
