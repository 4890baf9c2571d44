"""pyloop's default executor: what run_in_executor(None, ...) and
asyncio.to_thread run on.

asyncio's default is a ThreadPoolExecutor: per call a lock, a condition
variable, a concurrent.futures.Future chained to the asyncio future, and a
wake-up of the loop through call_soon_threadsafe. Here a call goes straight
to the process's work pool (oneTBB, work-stealing; pyloop/rt/work_pool.hpp),
whose threads each keep a thread state, and its outcome comes back through
the loop's inbox, completing the asyncio future on the loop thread
(pyloop/native/python_calls.cpp). With the GIL disabled the calls run in
parallel; with it, they take turns on it, as in asyncio's pool.

The pool is sized as asyncio's default executor, min(32, cores + 4), since
calls often block. Inside a call, threading.current_thread() is a
threading._DummyThread named pyloop_executor_N (asyncio's are Threads named
asyncio_N). Interpreter exit waits for the calls in flight, as
concurrent.futures does."""

import concurrent.futures
import threading
from asyncio import futures as asyncio_futures

from . import _fork, _native

def _wait_for_calls_at_exit():
    # Not in a forked child of a parent with calls: those run there, not here.
    if _fork.calls_pool_usable():
        _native._stop_pool()


# Before the interpreter goes, with the other executors' threads.
threading._register_atexit(_wait_for_calls_at_exit)


class PoolExecutor(concurrent.futures.Executor):
    """A concurrent.futures.Executor on the work pool. Each loop makes its
    own on first use, as asyncio makes a ThreadPoolExecutor; shutting one down
    waits for its own calls only."""

    def __init__(self):
        self._calls = _native.WorkGroup()
        self._shutdown = False
        self._shutdown_lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self._shutdown_lock:
            self._check_open()
            future = concurrent.futures.Future()

            def work(run):
                # As ThreadPoolExecutor's work item: not run if cancelled first.
                if not run:
                    future.cancel()
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)

            self._calls.run(work)
            return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._shutdown_lock:
            self._shutdown = True
            if cancel_futures:
                self._calls.cancel_queued()
        if wait:
            self._calls.wait()

    def _run_for(self, loop, func, args):
        # run_in_executor's path: an asyncio future, no concurrent one.
        with self._shutdown_lock:
            self._check_open()
            return loop._run_in_pool(self._calls, func, args)

    def _check_open(self):
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")


class ExecutorMethods:
    """run_in_executor for pyloop.Loop: asyncio's, with PoolExecutor as the
    default executor."""

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            # Only check when the default executor is being used
            self._check_default_executor()
            if executor is None:
                executor = self._default_executor = (
                    PoolExecutor() if _fork.calls_pool_usable()
                    # A forked child whose parent's pool is gone: asyncio's own.
                    else concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio"))
        if type(executor) is PoolExecutor:
            return executor._run_for(self, func, args)
        return asyncio_futures.wrap_future(executor.submit(func, *args), loop=self)
