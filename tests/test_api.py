"""pyloop's public API: run, new_event_loop, Loop, the policy shims."""

import asyncio
import os
import pathlib
import subprocess
import sys
import warnings

import pytest

import pyloop


async def current_loop():
    return asyncio.get_running_loop()


def test_run_uses_pyloop():
    loop = pyloop.run(current_loop())
    assert isinstance(loop, pyloop.Loop)
    assert loop.is_closed()


def test_run_debug_flag():
    async def debug():
        return asyncio.get_running_loop().get_debug()

    assert pyloop.run(debug(), debug=True) is True
    assert pyloop.run(debug(), debug=False) is False


def test_run_propagates_exceptions():
    async def fail():
        raise LookupError("x")

    with pytest.raises(LookupError):
        pyloop.run(fail())


def test_run_from_running_loop_raises():
    async def nested():
        coro = current_loop()
        try:
            with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
                pyloop.run(coro)
        finally:
            coro.close()

    pyloop.run(nested())


def test_asyncio_run_with_loop_factory():
    loop = asyncio.run(current_loop(), loop_factory=pyloop.new_event_loop)
    assert isinstance(loop, pyloop.Loop)


def test_asyncio_runner():
    with asyncio.Runner(loop_factory=pyloop.new_event_loop) as runner:
        first = runner.run(current_loop())
        second = runner.run(current_loop())
        assert first is second is runner.get_loop()
        assert isinstance(first, pyloop.Loop)


def test_loop_is_an_abstract_event_loop():
    loop = pyloop.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        asyncio.set_event_loop(loop)
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_state_queries_and_create_future(loop):
    assert (loop.is_running(), loop.is_closed(), loop.get_debug()) == (False, False, False)
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)

    async def main():
        assert loop.is_running() is True
        future = loop.create_future()
        assert type(future) is asyncio.Future and future.get_loop() is loop
        loop.call_soon(future.set_result, 5)
        return await future

    assert loop.run_until_complete(main()) == 5
    assert loop.is_running() is False
    with pytest.raises(TypeError):
        loop.create_future(1)
    loop.close()
    assert loop.is_closed() is True


# 3.14 deprecates the public policy functions; their private forms don't warn.
_get_policy = getattr(asyncio.events, "_get_event_loop_policy", asyncio.get_event_loop_policy)
_set_policy = getattr(asyncio.events, "_set_event_loop_policy", asyncio.set_event_loop_policy)


def test_install_is_deprecated_and_sets_policy():
    old = _get_policy()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pyloop.install()
        # One warning, pyloop's, pointing at the caller.
        assert [(w.category, w.filename) for w in caught] == [(DeprecationWarning, __file__)]
        assert "pyloop.run()" in str(caught[0].message)
        assert isinstance(_get_policy(), pyloop.EventLoopPolicy)
        loop = asyncio.new_event_loop()
        assert isinstance(loop, pyloop.Loop)
        loop.close()
    finally:
        _set_policy(old)


def test_import_touches_no_deprecated_asyncio_name():
    code = "import warnings; warnings.simplefilter('error'); import pyloop; pyloop.run(__import__('asyncio').sleep(0))"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_policy_shims_are_listed_until_policies_go():
    listed = {"EventLoopPolicy", "install"} <= set(pyloop.__all__)
    assert listed == (sys.version_info < (3, 16))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        pyloop.no_such_name  # noqa: B018


def test_unclosed_loop_warns():
    code = (
        "import gc, warnings, pyloop\n"
        "warnings.simplefilter('always')\n"
        "loop = pyloop.new_event_loop()\n"
        "del loop\n"
        "gc.collect()\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ResourceWarning" in out.stderr and "unclosed event loop" in out.stderr


def test_build_config():
    config = pyloop.build_config()
    assert config["version"] == pyloop.__version__
    assert config["free_threaded"] == (not getattr(sys, "_is_gil_enabled", lambda: True)()) or config[
        "free_threaded"
    ] == bool(__import__("sysconfig").get_config_var("Py_GIL_DISABLED"))


def test_logging_levels_from_environment():
    code = "import pyloop; pyloop.new_event_loop().close()"
    # Under tools/sanitize the children keep the preloaded sanitizer runtime and
    # its settings, or an extension built with ASan could not be imported.
    kept = ("LD_PRELOAD", "PYTHONMALLOC", "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")
    bare = {"PATH": "", **{k: os.environ[k] for k in kept if k in os.environ}}
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         env={**bare, "PYLOOP_LOG": "debug"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pyloop.loop" in out.stderr
    quiet = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, env=bare, timeout=60)
    assert "pyloop.loop" not in quiet.stderr


def test_configure_logging_at_runtime(capfd):
    pyloop._native.configure_logging("pyloop.loop=debug")
    try:
        pyloop.new_event_loop().close()
        assert "pyloop.loop" in capfd.readouterr().err
    finally:
        pyloop._native.configure_logging("warn")
    pyloop.new_event_loop().close()
    assert "pyloop.loop" not in capfd.readouterr().err


def test_ctrl_c_while_parked_cancels_main_task():
    # The loop is parked in epoll when SIGINT arrives; as under asyncio.run(),
    # the main task is cancelled and KeyboardInterrupt ends the run.
    import signal
    import time

    code = (
        "import asyncio, pyloop, signal\n"
        # As from a terminal, even when the suite runs in the background
        # (a non-interactive shell starts background jobs with SIGINT ignored).
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "async def main():\n"
        "    print('ready', flush=True)\n"
        "    try:\n"
        "        await asyncio.sleep(30)\n"
        "    except asyncio.CancelledError:\n"
        "        print('cancelled', flush=True)\n"
        "        raise\n"
        "pyloop.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-P", "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let the loop park
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "cancelled" in out
    assert "KeyboardInterrupt" in err
    assert proc.returncode != 0


def test_import_from_the_source_folder_says_what_to_do():
    # In the repository root the unbuilt source folder shadows the installed
    # package; Python alone would blame a circular import.
    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", "import pyloop"], cwd=root, capture_output=True, text=True)
    if result.returncode == 0:
        pytest.skip("pyloop is installed editable here: the source folder imports")
    assert "pyloop's native extension is not built in" in result.stderr
    assert "tools/install 3.13 --editable" in result.stderr
    assert "circular import" not in result.stderr.splitlines()[-1]


def test_a_rebound_asyncio_selector_loop_leaves_pyloop_whole(monkeypatch):
    class Replacement(asyncio.SelectorEventLoop):
        def __init__(self, selector=None):
            pass  # a helper's loop, built some other way

    monkeypatch.setattr(asyncio, "SelectorEventLoop", Replacement)
    loop = pyloop.new_event_loop()
    try:
        assert loop.run_until_complete(current_loop()) is loop
    finally:
        loop.close()
