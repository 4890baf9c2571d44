"""call_later, call_at, time() and the timer heap."""

import gc
import time
import weakref

import pytest
from conftest import scheduled_timer_count

import pyloop


def test_time_is_monotonic_clock(loop):
    before = time.monotonic()
    now = loop.time()
    after = time.monotonic()
    assert before <= now <= after


def test_timers_run_in_deadline_order(loop):
    out = []
    for delay in (0.03, 0.01, 0.02, 0.0):
        loop.call_later(delay, out.append, delay)
    loop.call_later(0.04, loop.stop)
    loop.run_forever()
    assert out == [0.0, 0.01, 0.02, 0.03]


def test_equal_deadlines_run_in_fifo_order():
    # A pyloop guarantee asyncio does not make: its heap compares deadlines only.
    loop = pyloop.new_event_loop()
    out = []
    when = loop.time() + 0.01
    for i in range(500):
        loop.call_at(when, out.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    loop.close()
    assert out == list(range(500))


def test_timer_never_fires_early(loop):
    fired = []
    start = loop.time()
    handle = loop.call_later(0.05, lambda: fired.append(loop.time()))
    loop.call_later(0.06, loop.stop)
    loop.run_forever()
    assert fired and fired[0] >= handle.when() >= start + 0.05


def test_call_at_and_when(loop):
    when = loop.time() + 0.01
    handle = loop.call_at(when, lambda: None)
    assert handle.when() == when


def test_negative_delay_runs_on_next_iteration(loop):
    out = []
    loop.call_later(-5, out.append, "neg")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["neg"]


def test_timer_context_and_args(loop):
    import contextvars

    var = contextvars.ContextVar("v")
    ctx = contextvars.Context()
    ctx.run(var.set, 7)
    out = []
    loop.call_later(0, lambda a, b: out.append((a, b, var.get())), 1, 2, context=ctx)
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert out == [(1, 2, 7)]


def test_cancelled_timer_does_not_run(loop):
    out = []
    handle = loop.call_later(0.001, out.append, "x")
    handle.cancel()
    assert handle.cancelled()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert out == []


def test_cancelled_timers_do_not_leak(loop):
    class Payload:
        pass

    refs = []
    handles = []
    for _ in range(300):
        p = Payload()
        refs.append(weakref.ref(p))
        handles.append(loop.call_later(3600, lambda p=p: None))
    for h in handles:
        h.cancel()
    del handles, p
    gc.collect()
    # The callback and its arguments are released at cancel() ...
    assert all(r() is None for r in refs)
    loop.call_soon(loop.stop)
    loop.run_forever()
    # ... and the heap drops the cancelled handles on the next iteration.
    assert scheduled_timer_count(loop) == 0


def test_heap_compacts_when_most_timers_are_cancelled(loop):
    keep = [loop.call_later(3600, lambda: None) for _ in range(50)]
    drop = [loop.call_later(3600 + i, lambda: None) for i in range(200)]
    for h in drop:
        h.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert scheduled_timer_count(loop) == len(keep)


def test_timer_handle_ordering(loop):
    a = loop.call_at(loop.time() + 10, lambda: None)
    b = loop.call_at(loop.time() + 20, lambda: None)
    assert a < b and b > a and a <= b and a != b
    assert hash(a) == hash(a.when())
    assert "when=" in repr(a)


@pytest.mark.parametrize("method", ["call_later", "call_at"])
def test_none_time_is_type_error(loop, method):
    with pytest.raises(TypeError):
        getattr(loop, method)(None, lambda: None)


def test_non_numeric_delay_is_type_error(loop):
    with pytest.raises(TypeError):
        loop.call_later("1", lambda: None)


def test_timer_after_close_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_later(1, lambda: None)


def test_loop_parks_until_next_deadline(loop):
    # With nothing ready the loop sleeps until the timer instead of spinning:
    # CPU time stays far below the wall time waited.
    loop.call_later(0.2, loop.stop)
    cpu0 = time.process_time()
    loop.run_forever()
    assert time.process_time() - cpu0 < 0.1


def test_asyncio_sleep(loop):
    async def main():
        t0 = loop.time()
        await __import__("asyncio").sleep(0.02)
        return loop.time() - t0

    assert loop.run_until_complete(main()) >= 0.02
