"""Subprocesses and signal handlers: good and bad input on both loops, so
asyncio pins the errors. Every test checks that no fd is left open and no
child is left unreaped. (CPython's test_subprocess and the signal tests of
test_unix_events run against pyloop too, from test_cpython_asyncio.py.)"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading

import pytest
from conftest import fd_count

pytestmark = pytest.mark.timeout(60)

PY = sys.executable


def reaped(pid):
    """Whether child pid is gone and reaped (the loop has waited for it)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def run_clean(loop, coro):
    """Runs coro, which returns (result, pids of the children it made), on
    loop; asserts it left no fd open and no child unreaped."""
    before = fd_count()
    result, pids = loop.run_until_complete(coro)
    assert fd_count() == before
    assert all(reaped(pid) for pid in pids)
    return result


def test_every_kind_of_stdio(loop):
    async def main():
        with tempfile.TemporaryFile() as out_file:
            read_end, write_end = os.pipe()
            script = (
                "import sys; data = sys.stdin.read(); sys.stdout.write(data.upper()); "
                "sys.stderr.write('err'); import os; os.write(int(sys.argv[1]), b'fd')"
            )
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", script, str(write_end), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, pass_fds=(write_end,),
            )
            os.close(write_end)
            out, err = await proc.communicate(b"hello")
            from_fd = os.read(read_end, 10)
            os.close(read_end)
            quiet = await asyncio.create_subprocess_exec(
                PY, "-c", "print('to a file'); import sys; sys.stderr.write('dropped')",
                stdin=asyncio.subprocess.DEVNULL, stdout=out_file, stderr=asyncio.subprocess.DEVNULL,
            )
            await quiet.wait()
            out_file.seek(0)
            return (out, err, from_fd, proc.returncode, out_file.read(), quiet.returncode), [proc.pid, quiet.pid]

    out, err, from_fd, code, in_file, quiet_code = run_clean(loop, main())
    assert (out, err, from_fd, code) == (b"HELLOerr", None, b"fd", 0)
    assert (in_file, quiet_code) == (b"to a file\n", 0)


def test_shell_cwd_env_and_exit_status(loop, tmp_path):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            'echo "$GREETING"; pwd; exit 3', stdout=asyncio.subprocess.PIPE, cwd=tmp_path,
            env={"GREETING": "hi", "PATH": os.environ["PATH"]},
        )
        out, _ = await proc.communicate()
        return (out, proc.returncode), [proc.pid]

    out, code = run_clean(loop, main())
    assert out.decode().split() == ["hi", str(tmp_path)]
    assert code == 3


def test_session_group_and_signals_to_the_child(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import os, time; print(os.getsid(0), os.getpgid(0), flush=True); time.sleep(60)",
            stdout=asyncio.subprocess.PIPE, start_new_session=True,
        )
        line = await proc.stdout.readline()
        proc.terminate()
        code = await proc.wait()
        # Once its exit and its stdout's EOF are both in, the transport has
        # let the process go, and a signal has nothing to reach. (Between the
        # two, 3.14 sends nothing and reports nothing: which comes first is
        # the kernel's choice.)
        assert await proc.stdout.read() == b""
        with pytest.raises(ProcessLookupError):
            proc.kill()
        return ([int(x) for x in line.split()], proc.pid, code), [proc.pid]

    (sid, pgid), pid, code = run_clean(loop, main())
    assert sid == pgid == pid
    assert code == -signal.SIGTERM


def test_missing_program_and_bad_cwd_raise_as_asyncio_does(loop, tmp_path):
    async def main():
        errors = []
        for kwargs in ({"program": str(tmp_path / "no-such-program")}, {"program": PY, "cwd": tmp_path / "gone"}):
            program = kwargs.pop("program")
            with pytest.raises(FileNotFoundError) as info:
                await asyncio.create_subprocess_exec(program, "-c", "pass", stdout=asyncio.subprocess.PIPE, **kwargs)
            errors.append(info.value.errno)
        return errors, []

    assert run_clean(loop, main()) == [2, 2]


@pytest.mark.parametrize(
    "call, kwargs, error",
    [
        ("exec", {"universal_newlines": True}, ValueError),
        ("exec", {"text": True}, ValueError),
        ("exec", {"encoding": "utf-8"}, ValueError),
        ("exec", {"bufsize": 1}, ValueError),
        ("exec", {"shell": True}, ValueError),
        ("shell", {"shell": False}, ValueError),
        ("shell", {"cmd": ["echo", "a list"]}, ValueError),
        ("exec", {"program": 42}, TypeError),
        ("exec", {"preexec_fn": 42}, subprocess.SubprocessError),
    ],
)
def test_bad_subprocess_arguments_get_asyncio_errors(loop, call, kwargs, error):
    kwargs = dict(kwargs)  # the parameter is shared by both loops' runs

    async def main():
        kwargs.setdefault("program" if call == "exec" else "cmd", PY if call == "exec" else "true")
        if call == "exec":
            await loop.subprocess_exec(asyncio.SubprocessProtocol, kwargs.pop("program"), "-c", "pass", **kwargs)
        else:
            await loop.subprocess_shell(asyncio.SubprocessProtocol, kwargs.pop("cmd"), **kwargs)

    with pytest.raises(error):
        run_clean(loop, main())


def test_signal_handler_runs_on_the_loop_and_goes(loop):
    async def main():
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result(threading.get_ident()))
        os.kill(os.getpid(), signal.SIGUSR1)
        ident = await asyncio.wait_for(got, 10)
        removed = loop.remove_signal_handler(signal.SIGUSR1), loop.remove_signal_handler(signal.SIGUSR1)
        return (ident, removed, signal.getsignal(signal.SIGUSR1)), []

    ident, removed, handler = run_clean(loop, main())
    assert ident == threading.get_ident()
    assert removed == (True, False)
    assert handler == signal.SIG_DFL


@pytest.mark.parametrize(
    "sig, callback, error",
    [
        ("not a signal", lambda: None, TypeError),
        (0, lambda: None, ValueError),
        (signal.NSIG, lambda: None, ValueError),
        (signal.SIGKILL, lambda: None, RuntimeError),
        (signal.SIGUSR1, asyncio.sleep, TypeError),  # a coroutine function
    ],
)
def test_bad_signal_handlers_get_asyncio_errors(loop, sig, callback, error):
    with pytest.raises(error):
        loop.add_signal_handler(sig, callback)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handlers_only_on_the_main_thread(loop_factory):
    outcome = {}

    def in_a_thread():
        loop = loop_factory()
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except Exception as exc:  # noqa: BLE001 (the error is the result)
            outcome["error"] = exc
        finally:
            loop.close()

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert type(outcome["error"]) is RuntimeError
    assert "main thread" in str(outcome["error"])
