"""run_forever, run_until_complete, stop, close and their misuse."""

import asyncio
import sys
import threading

import pytest


def test_run_until_complete_returns_result(loop):
    async def main():
        await asyncio.sleep(0)
        return 42

    assert loop.run_until_complete(main()) == 42


def test_run_until_complete_raises_coroutine_error(loop):
    async def main():
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        loop.run_until_complete(main())


def test_run_until_complete_accepts_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_future_from_other_loop(loop, loop_factory):
    other = loop_factory()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_run_until_complete_stopped_early(loop):
    async def main():
        loop.stop()
        await asyncio.sleep(1)

    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed"):
        loop.run_until_complete(main())


def test_stop_before_run_forever_runs_one_iteration(loop):
    out = []
    loop.call_soon(out.append, 1)
    loop.stop()
    loop.run_forever()
    assert out == [1]


def test_run_forever_while_running_raises(loop):
    errors = []

    def nested():
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(nested)
    loop.run_forever()
    assert errors == ["This event loop is already running"]


def test_run_until_complete_while_running_raises(loop):
    async def inner():
        pass

    async def main():
        coro = inner()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                loop.run_until_complete(coro)
        finally:
            coro.close()

    loop.run_until_complete(main())


def test_close_while_running_raises(loop):
    errors = []

    def try_close():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(try_close)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]


def test_close_is_idempotent_and_drops_callbacks(loop):
    out = []
    loop.call_soon(out.append, 1)
    loop.call_later(10, out.append, 2)
    loop.close()
    loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()
    assert out == []


def test_run_until_complete_after_close(loop):
    loop.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)
    coro.close()


def test_create_task_name_and_context(loop):
    import contextvars

    var = contextvars.ContextVar("v", default=None)
    ctx = contextvars.Context()
    ctx.run(var.set, "ctx")

    async def read():
        return var.get()

    task = loop.create_task(read(), name="reader", context=ctx)
    assert task.get_name() == "reader"
    assert loop.run_until_complete(task) == "ctx"


def test_task_factory(loop):
    made = []

    def factory(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def main():
        return 1

    assert loop.run_until_complete(main()) == 1
    assert len(made) == 1
    with pytest.raises(TypeError):
        loop.set_task_factory(1)


def test_exception_handler_accessors(loop):
    def handler(loop, ctx):
        pass

    assert loop.get_exception_handler() is None
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    with pytest.raises(TypeError):
        loop.set_exception_handler(1)
    loop.set_exception_handler(None)


def test_call_exception_handler_uses_custom_handler(loop):
    seen = []
    loop.set_exception_handler(lambda loop, ctx: seen.append(ctx["message"]))
    loop.call_exception_handler({"message": "hello"})
    assert seen == ["hello"]


def test_default_exception_handler_logs_message(loop, caplog):
    loop.default_exception_handler({"message": "custom problem"})
    assert "custom problem" in caplog.text


def test_debug_flag(loop):
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True


def test_non_threadsafe_call_from_other_thread_in_debug_mode(loop):
    loop.set_debug(True)
    errors = []

    def other_thread():
        try:
            loop.call_soon(lambda: None)
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(lambda: threading.Thread(target=other_thread).start())
    loop.run_forever()
    assert errors and "Non-thread-safe operation" in errors[0]


def test_run_in_executor_and_default_executor(loop):
    import concurrent.futures

    assert loop.run_until_complete(loop.run_in_executor(None, sum, [1, 2, 3])) == 6
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(executor)
    name = loop.run_until_complete(loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("ThreadPoolExecutor")
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(TypeError):
        loop.set_default_executor(object())


def test_run_in_executor_rejects_coroutine_function(loop):
    async def coro():
        pass

    loop.set_debug(True)  # asyncio checks the callable in debug mode only
    with pytest.raises(TypeError):
        loop.run_in_executor(None, coro)


def test_shutdown_asyncgens(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        gen = agen()
        await gen.__anext__()
        return gen

    gen = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]
    del gen


def test_create_future_belongs_to_loop(loop):
    fut = loop.create_future()
    assert fut.get_loop() is loop
    fut.cancel()


def test_repr(loop):
    r = repr(loop)
    assert "running=False" in r and "closed=False" in r and "debug=False" in r


def test_create_task_after_close_raises(loop):
    loop.close()

    async def coro():
        pass

    c = coro()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(c)
    c.close()


def test_create_task_rejects_bad_arguments(loop):
    async def coro():
        pass

    c = coro()
    with pytest.raises(TypeError):
        loop.create_task(c, bogus=1)
    with pytest.raises(TypeError):
        loop.create_task(c, "positional name")
    with pytest.raises(TypeError):
        loop.create_task(42)
    c.close()


def test_create_task_with_factory_gets_context(loop):
    import contextvars

    seen = []

    def factory(loop, coro, **kwargs):
        seen.append(sorted(kwargs))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)

    async def coro():
        return "ok"

    task = loop.create_task(coro(), name="n", context=contextvars.copy_context())
    assert loop.run_until_complete(task) == "ok"
    assert task.get_name() == "n"
    # asyncio 3.13 names the task after the factory made it; 3.14 hands the
    # factory every keyword.
    assert seen == [["context"] if sys.version_info < (3, 14) else ["context", "name"]]


def test_create_task_and_create_future_use_the_classes_asyncio_has_now(loop, monkeypatch):
    # As asyncio's loop, which looks up tasks.Task and futures.Future when
    # called: replacing them (asyncio's own tests run its pure-Python classes
    # that way) reaches loops made before.
    monkeypatch.setattr(asyncio.tasks, "Task", asyncio.tasks._PyTask)
    monkeypatch.setattr(asyncio.futures, "Future", asyncio.futures._PyFuture)

    async def main():
        return type(loop.create_future()), type(loop.create_task(asyncio.sleep(0)))

    assert loop.run_until_complete(main()) == (asyncio.futures._PyFuture, asyncio.tasks._PyTask)


def test_create_task_in_debug_mode_records_traceback(loop):
    loop.set_debug(True)

    async def coro():
        pass

    task = loop.create_task(coro())
    assert task._source_traceback
    loop.run_until_complete(task)
