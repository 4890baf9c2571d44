"""call_soon and the handles it returns."""

import asyncio
import contextvars
import gc
import weakref

import pytest

VAR = contextvars.ContextVar("VAR", default="unset")


def run_briefly(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_call_soon_runs_in_fifo_order_with_args(loop):
    out = []
    for i in range(100):
        loop.call_soon(out.append, i)
    run_briefly(loop)
    assert out == list(range(100))


def test_call_soon_passes_positional_args(loop):
    out = []
    loop.call_soon(lambda *a: out.append(a), 1, "two", None)
    run_briefly(loop)
    assert out == [(1, "two", None)]


def test_callbacks_added_while_running_wait_for_next_iteration(loop):
    out = []

    def first():
        out.append("first")
        loop.call_soon(out.append, "added")

    loop.call_soon(first)
    loop.call_soon(loop.stop)
    loop.run_forever()
    # stop() lets the current batch finish; "added" belongs to the next one.
    assert out == ["first"]
    run_briefly(loop)
    assert out == ["first", "added"]


def test_call_soon_copies_current_context(loop):
    seen = []
    token = VAR.set("outer")
    try:
        loop.call_soon(lambda: seen.append(VAR.get()))
    finally:
        VAR.reset(token)
    VAR.set("changed later")
    run_briefly(loop)
    assert seen == ["outer"]


def test_call_soon_runs_in_given_context(loop):
    ctx = contextvars.Context()
    ctx.run(VAR.set, "in ctx")
    seen = []

    def cb():
        seen.append(VAR.get())
        VAR.set("mutated")

    loop.call_soon(cb, context=ctx)
    run_briefly(loop)
    assert seen == ["in ctx"]
    assert ctx[VAR] == "mutated"
    assert VAR.get() != "mutated"


def test_handle_get_context(loop):
    ctx = contextvars.copy_context()
    assert loop.call_soon(lambda: None, context=ctx).get_context() is ctx


def test_cancelled_handle_does_not_run_and_drops_callback(loop):
    out = []

    class Callback:
        def __call__(self):
            out.append("ran")

    cb = Callback()
    ref = weakref.ref(cb)
    handle = loop.call_soon(cb)
    del cb
    assert not handle.cancelled()
    handle.cancel()
    handle.cancel()  # idempotent
    assert handle.cancelled()
    gc.collect()
    assert ref() is None
    run_briefly(loop)
    assert out == []


def test_callback_may_cancel_its_own_handle(loop):
    out = []
    handles = []

    def cb():
        handles[0].cancel()
        out.append("ran")

    handles.append(loop.call_soon(cb))
    run_briefly(loop)
    assert out == ["ran"]
    assert handles[0].cancelled()


def test_handle_repr_names_callback(loop):
    def my_callback():
        pass

    handle = loop.call_soon(my_callback)
    assert "my_callback" in repr(handle)
    assert repr(handle).startswith("<Handle")
    handle.cancel()
    assert "cancelled" in repr(handle)


def test_call_soon_without_callback_is_type_error(loop):
    with pytest.raises(TypeError):
        loop.call_soon()


def test_call_soon_unknown_keyword_is_type_error(loop):
    with pytest.raises(TypeError):
        loop.call_soon(lambda: None, bogus=1)


def test_call_soon_after_close_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(lambda: None)


@pytest.mark.parametrize("bad", [1, "not callable", None])
def test_debug_mode_rejects_non_callables(loop, bad):
    loop.set_debug(True)
    with pytest.raises(TypeError, match="a callable object was expected by call_soon"):
        loop.call_soon(bad)


def test_debug_mode_rejects_coroutine_functions(loop):
    async def coro():
        pass

    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        loop.call_soon(coro)


def test_non_callable_outside_debug_mode_reports_error_when_run(loop):
    contexts = []
    loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
    loop.call_soon(42)
    run_briefly(loop)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], TypeError)


def test_exception_in_callback_goes_to_exception_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
    err = ValueError("boom")

    def bad():
        raise err

    handle = loop.call_soon(bad)
    after = []
    loop.call_soon(after.append, "still runs")
    run_briefly(loop)
    assert after == ["still runs"]
    assert len(contexts) == 1
    assert contexts[0]["exception"] is err
    assert contexts[0]["handle"] is handle
    assert contexts[0]["message"].startswith("Exception in callback")


def test_default_exception_handler_logs(loop, caplog):
    def bad():
        raise ValueError("logged")

    loop.call_soon(bad)
    run_briefly(loop)
    assert "Exception in callback" in caplog.text
    assert "ValueError: logged" in caplog.text


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_system_exit_and_keyboard_interrupt_propagate(loop, exc_type):
    def bad():
        raise exc_type()

    out = []
    loop.call_soon(bad)
    loop.call_soon(out.append, "later")
    with pytest.raises(exc_type):
        loop.run_forever()
    assert not loop.is_running()
    # The rest of the batch is still queued, as in asyncio.
    run_briefly(loop)
    assert out == ["later"]


def test_exception_handler_errors_are_logged_not_raised(loop, caplog):
    def handler(loop, ctx):
        raise RuntimeError("handler failed")

    loop.set_exception_handler(handler)
    loop.call_soon(lambda: 1 / 0)
    run_briefly(loop)
    assert "Unhandled error in exception handler" in caplog.text


def test_slow_callback_warning_in_debug_mode(loop, caplog):
    import time

    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.05)
    with caplog.at_level("WARNING", logger="asyncio"):
        run_briefly(loop)
    assert "took" in caplog.text and "seconds" in caplog.text


def test_handle_source_traceback_in_debug_mode(loop):
    loop.set_debug(True)
    handle = loop.call_soon(lambda: None)
    frame = handle._source_traceback[-1]
    assert frame[2] == "test_handle_source_traceback_in_debug_mode"
    assert "created at" in repr(handle)


def test_is_running_inside_callback(loop):
    seen = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    run_briefly(loop)
    assert seen == [True]
    assert not loop.is_running()


def test_get_running_loop_inside_callback(loop):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
    run_briefly(loop)
    assert seen == [loop]
