"""call_soon_threadsafe and loops in several threads."""

import asyncio
import concurrent.futures
import threading
import time

import pytest


def test_call_soon_threadsafe_wakes_parked_loop(loop):
    # The loop has nothing to do and parks without a deadline; only the
    # cross-thread call can wake it.
    started = threading.Event()

    def other():
        started.wait()
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=other)
    t.start()
    loop.call_soon(started.set)
    loop.run_forever()
    t.join()


def test_threadsafe_then_local_keeps_order(loop):
    out = []
    lock = threading.Lock()
    lock.acquire()

    def other():
        loop.call_soon_threadsafe(out.append, "threadsafe")
        lock.release()

    threading.Thread(target=other).start()
    with lock:
        loop.call_soon(out.append, "local")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["threadsafe", "local"]


@pytest.mark.parametrize("threads,per_thread", [(8, 5000)])
def test_many_threads_lose_nothing_and_keep_per_thread_order(loop, threads, per_thread):
    received = {i: [] for i in range(threads)}
    total = threads * per_thread
    count = 0
    barrier = threading.Barrier(threads)

    def cb(tid, seq):
        nonlocal count
        received[tid].append(seq)
        count += 1
        if count == total:
            loop.stop()

    def producer(tid):
        barrier.wait()
        for seq in range(per_thread):
            loop.call_soon_threadsafe(cb, tid, seq)

    workers = [threading.Thread(target=producer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    loop.run_forever()
    for w in workers:
        w.join()
    assert count == total
    for tid in range(threads):
        assert received[tid] == list(range(per_thread))


def test_call_soon_threadsafe_after_close_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(lambda: None)


def test_call_soon_threadsafe_context(loop):
    import contextvars

    var = contextvars.ContextVar("v", default="none")
    ctx = contextvars.Context()
    ctx.run(var.set, "given")
    out = []
    loop.call_soon_threadsafe(lambda: out.append(var.get()), context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["given"]


def test_debug_mode_threadsafe_rejects_non_callable(loop):
    loop.set_debug(True)
    with pytest.raises(TypeError, match="call_soon_threadsafe"):
        loop.call_soon_threadsafe(1)


def test_wrap_future_from_thread(loop):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        fut = pool.submit(lambda: "from thread")
        assert loop.run_until_complete(asyncio.wrap_future(fut, loop=loop)) == "from thread"


def test_several_loops_in_several_threads_run_at_once(loop_factory):
    n = 4
    running = 0
    lock = threading.Lock()
    all_running = threading.Event()
    results = [None] * n

    async def main(i):
        nonlocal running
        with lock:
            running += 1
            if running == n:
                all_running.set()
        # Each loop keeps running callbacks until every loop is running.
        while not all_running.is_set():
            await asyncio.sleep(0.001)
        total = 0
        for _ in range(1000):
            await asyncio.sleep(0)
            total += 1
        return total

    def thread_main(i):
        loop = loop_factory()
        try:
            results[i] = loop.run_until_complete(asyncio.wait_for(main(i), 30))
        finally:
            loop.close()

    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1000] * n


def _waits_for_running_callbacks(loop):
    # asyncio's loop has waited since its _ThreadSafeHandle (3.13.1); pyloop's
    # handles wait on every version.
    import pyloop

    return isinstance(loop, pyloop.Loop) or hasattr(asyncio.events, "_ThreadSafeHandle")


@pytest.mark.parametrize("ask", ["cancel", "cancelled"])
def test_threadsafe_handle_waits_for_its_running_callback(loop, ask):
    if not _waits_for_running_callbacks(loop):
        pytest.skip("this asyncio has no _ThreadSafeHandle, so it does not wait")
    started, finished = threading.Event(), threading.Event()
    seen = {}

    def callback():
        started.set()
        time.sleep(0.2)  # the other thread asks meanwhile
        finished.set()

    def other():
        handle = loop.call_soon_threadsafe(callback)
        started.wait()
        seen["answer"] = getattr(handle, ask)()
        seen["finished first"] = finished.is_set()
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=other)
    t.start()
    loop.run_forever()
    t.join()
    assert seen == {"answer": None if ask == "cancel" else False, "finished first": True}


def test_threadsafe_handle_cancelled_from_its_own_callback_does_not_wait(loop):
    got = concurrent.futures.Future()
    seen = []

    def callback():
        handle = got.result()
        handle.cancel()  # from inside: no effect, no wait for itself
        seen.append(handle.cancelled())
        loop.stop()

    handle = loop.call_soon_threadsafe(callback)
    got.set_result(handle)
    loop.run_forever()
    assert seen == [True]


def test_threadsafe_handle_cancelled_before_it_runs_never_runs(loop):
    ran = []
    gate = threading.Event()

    def other():
        handle = loop.call_soon_threadsafe(ran.append, 1)
        handle.cancel()
        gate.set()
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(gate.wait)  # the loop is busy while the other thread cancels
    t = threading.Thread(target=other)
    t.start()
    loop.run_forever()
    t.join()
    assert ran == []
