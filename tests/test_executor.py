"""The default executor (run_in_executor(None, ...), asyncio.to_thread):
asyncio's semantics on both loops. pyloop runs the calls on its work pool
(pyloop/_executor.py), asyncio on a ThreadPoolExecutor."""

import asyncio
import concurrent.futures
import contextvars
import os
import subprocess
import sys
import sysconfig
import threading
import time
import warnings

import pytest

import pyloop
from pyloop import _native

pytestmark = pytest.mark.timeout(60)
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def pool_size(loop):
    if isinstance(loop, pyloop.Loop):
        return _native._pool_size()
    return loop._default_executor._max_workers


def test_results_exceptions_and_the_future_type(loop):
    async def main():
        future = loop.run_in_executor(None, divmod, 7, 2)
        assert isinstance(future, asyncio.Future) and future.get_loop() is loop
        assert await future == (3, 1)
        assert await loop.run_in_executor(None, lambda: (1, 2)) == (1, 2)  # a tuple is not splatted
        with pytest.raises(ZeroDivisionError) as raised:
            await loop.run_in_executor(None, lambda: 1 / 0)
        assert raised.value.__traceback__ is not None
        with pytest.raises(KeyError):
            await asyncio.to_thread({}.__getitem__, "missing")
        with pytest.raises(TypeError, match="not callable"):  # asyncio checks it only in debug mode
            await loop.run_in_executor(None, 42)

    loop.run_until_complete(main())


def test_to_thread_copies_the_context(loop):
    var = contextvars.ContextVar("var", default="unset")

    def read_and_set():
        seen = var.get()
        var.set("set in the thread")
        return seen

    async def main():
        var.set("set in the task")
        assert await asyncio.to_thread(read_and_set) == "set in the task"
        assert var.get() == "set in the task"

    loop.run_until_complete(main())


def test_the_calls_thread_has_a_name(loop):
    name = loop.run_until_complete(loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("pyloop_executor_" if isinstance(loop, pyloop.Loop) else "asyncio_")


def test_cancelling_the_future_does_not_stop_a_running_call(loop):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def call():
        started.set()
        release.wait(10)
        finished.set()
        return "done"

    async def main():
        future = loop.run_in_executor(None, call)
        await loop.run_in_executor(None, started.wait, 10)
        future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await future
        release.set()
        await loop.run_in_executor(None, finished.wait, 10)

    loop.run_until_complete(main())
    assert finished.is_set()


def test_a_full_pool_queues_calls_and_runs_them_all(loop):
    size = None

    async def main():
        nonlocal size
        await loop.run_in_executor(None, int)  # makes asyncio's pool
        size = pool_size(loop)
        gate = threading.Barrier(size + 1)
        blocked = [loop.run_in_executor(None, gate.wait, 10) for _ in range(size)]
        queued = loop.run_in_executor(None, lambda: "ran after")
        await asyncio.sleep(0.05)
        assert not queued.done()  # every thread is taken
        gate.wait(10)
        await asyncio.gather(*blocked)
        assert await queued == "ran after"

    loop.run_until_complete(main())
    assert size >= 5  # min(32, cores + 4), as asyncio's


def test_shutdown_with_cancel_futures_cancels_what_has_not_started(loop):
    ran = []

    async def main():
        await loop.run_in_executor(None, int)
        size = pool_size(loop)
        gate = threading.Barrier(size + 1)
        blocked = [loop.run_in_executor(None, gate.wait, 10) for _ in range(size)]
        queued = loop.run_in_executor(None, ran.append, "queued")
        await asyncio.sleep(0.05)
        loop._default_executor.shutdown(wait=False, cancel_futures=True)
        gate.wait(10)
        await asyncio.gather(*blocked)
        with pytest.raises(asyncio.CancelledError):
            await queued

    loop.run_until_complete(main())
    assert ran == []


def test_shutdown_default_executor_waits_for_running_calls(loop):
    finished = []

    async def main():
        loop.run_in_executor(None, lambda: (time.sleep(0.2), finished.append(True)))
        await asyncio.sleep(0.01)
        await loop.shutdown_default_executor()
        assert finished == [True]
        with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
            loop.run_in_executor(None, int)

    loop.run_until_complete(main())


def test_shutdown_default_executor_warns_at_its_timeout(loop):
    release = threading.Event()

    async def main():
        loop.run_in_executor(None, release.wait, 10)
        await asyncio.sleep(0.01)
        with pytest.warns(RuntimeWarning, match="did not finishing joining its threads within 0.1 seconds"):
            await loop.shutdown_default_executor(timeout=0.1)

    try:
        loop.run_until_complete(main())
    finally:
        release.set()


def test_a_default_executor_set_by_the_user_is_used(loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="users") as executor:
        loop.set_default_executor(executor)
        name = loop.run_until_complete(loop.run_in_executor(None, lambda: threading.current_thread().name))
        assert name.startswith("users")
        loop.close()


def test_an_explicit_executor_is_used(loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="explicit") as executor:
        name = loop.run_until_complete(loop.run_in_executor(executor, lambda: threading.current_thread().name))
    assert name.startswith("explicit")


def test_after_close_run_in_executor_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_in_executor(None, int)


def test_debug_mode_rejects_coroutine_functions_and_non_callables(loop):
    async def coroutine_function():
        pass

    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used with run_in_executor"):
        loop.run_in_executor(None, coroutine_function)
    with pytest.raises(TypeError, match="a callable object was expected by run_in_executor"):
        loop.run_in_executor(None, 42)


def test_concurrent_futures_errors_become_asyncios(loop):
    def cancelled():
        raise concurrent.futures.CancelledError("inside")

    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(loop.run_in_executor(None, cancelled))


def test_stop_iteration_becomes_runtime_error(loop):
    # A future cannot hold StopIteration: asyncio's future turns it into a
    # RuntimeError.
    def stop():
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration interacts badly with generators"):
        loop.run_until_complete(loop.run_in_executor(None, stop))


def test_closing_the_loop_with_calls_in_flight(loop):
    release, finished = threading.Event(), threading.Event()
    loop.run_until_complete(asyncio.sleep(0))
    future = loop.run_in_executor(None, lambda: (release.wait(10), finished.set()))
    loop.close()  # asyncio's shutdown(wait=False): the call goes on
    release.set()
    assert finished.wait(10)
    assert not future.done()


def test_pools_executor_api():
    executor = pyloop.new_event_loop()
    try:
        executor.run_until_complete(executor.run_in_executor(None, int))
        pool = executor._default_executor
        assert pool.submit(pow, 2, 10).result(10) == 1024
        assert list(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(10)
        pool.shutdown()
        with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
            pool.submit(int)
    finally:
        executor.close()


def test_interpreter_exit_waits_for_calls_in_flight(tmp_path):
    code = (
        "import asyncio, time, pyloop\n"
        "loop = pyloop.new_event_loop()\n"
        "loop.run_in_executor(None, lambda: (time.sleep(0.3), print('finished', flush=True)))\n"
        "print('exiting', flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["exiting", "finished"]


def busy(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def test_cpu_bound_calls_in_parallel(loop):
    # With the GIL off the calls run side by side: each records when it ran,
    # and at least two overlap. With the GIL they take turns, correctly.
    spans = []

    def timed(n):
        start = time.perf_counter()
        result = busy(n)
        spans.append((start, time.perf_counter()))
        return result

    async def main():
        return await asyncio.gather(*(asyncio.to_thread(timed, 300_000) for _ in range(4)))

    assert loop.run_until_complete(main()) == [busy(300_000)] * 4
    if FREE_THREADED and not sys._is_gil_enabled() and os.cpu_count() > 1:
        spans.sort()
        assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def test_loops_in_threads_share_the_pool(loop_factory):
    results = {}

    def thread_main(i):
        loop = loop_factory()
        try:
            async def main():
                return sum(await asyncio.gather(*(loop.run_in_executor(None, abs, -k) for k in range(500))))
            results[i] = loop.run_until_complete(main())
        finally:
            loop.close()

    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: sum(range(500)) for i in range(4)}


FORK = """
import asyncio, os, sys, warnings
import pyloop
warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a process with threads
new_loop = asyncio.SelectorEventLoop if sys.argv[1] == "asyncio" else pyloop.new_event_loop

async def use():
    loop = asyncio.get_running_loop()
    called = await loop.run_in_executor(None, abs, -3)
    found = await loop.getaddrinfo("127.0.0.1", 80)
    return called, found[0][4], type(loop._default_executor).__name__

def run():
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(asyncio.wait_for(use(), 10))

if sys.argv[2] == "before":
    print("parent", *run(), flush=True)
pid = os.fork()
if pid == 0:
    print("child", *run(), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("status", status)
"""


@pytest.mark.parametrize("parent", ["before", "not-before"])
def test_a_forked_child_runs_calls_and_lookups(loop_factory, parent, tmp_path):
    # A child has none of its parent's threads: where the parent started the
    # pools, the child's calls go to asyncio's ThreadPoolExecutor instead.
    kind = "asyncio" if loop_factory is asyncio.SelectorEventLoop else "pyloop"
    out = subprocess.run([sys.executable, "-P", "-c", FORK, kind, parent], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    pool = "PoolExecutor" if kind == "pyloop" else "ThreadPoolExecutor"
    child_pool = "ThreadPoolExecutor" if parent == "before" else pool
    expected = [f"child 3 ('127.0.0.1', 80) {child_pool}", "status 0"]
    if parent == "before":
        expected.insert(0, f"parent 3 ('127.0.0.1', 80) {pool}")
    assert lines == expected
