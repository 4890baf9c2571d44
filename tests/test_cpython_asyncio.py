"""CPython's own test_asyncio, run against pyloop (see tests/cpython/run_suite.py;
exclusions, each with its reason, are in tests/cpython/exclusions.txt), once
as it is and once in asyncio's debug mode (PYTHONASYNCIODEBUG=1). The plain
run gives pyloop one I/O thread sharing each socket (PYLOOP_IO_THREADS=1),
the debug run none, so both ways of reading a socket meet the whole suite."""

import os
import pathlib
import subprocess
import sys

import pytest

RUNNER = pathlib.Path(__file__).parent / "cpython" / "run_suite.py"

MODULES = [
    "test_events",
    "test_sock_lowlevel",
    "test_streams",
    "test_server",
    "test_buffered_proto",
    "test_sendfile",
    "test_unix_events",
    "test_subprocess",
    "test_ssl",
    "test_sslproto",
    "test_protocols",
    "test_futures",
    "test_futures2",
    "test_tasks",
    "test_runners",
    "test_timeouts",
    "test_taskgroups",
    "test_locks",
    "test_queues",
    "test_waitfor",
    "test_pep492",
    "test_context",
    "test_eager_task_factory",
    "test_threads",
    "test_staggered",
]
if sys.version_info >= (3, 14):
    # New in 3.14: the call graph (capture_call_graph), asyncio on several
    # threads, and `python -m asyncio ps / pstree`'s formatting.
    MODULES += ["test_graph", "test_free_threading", "test_tools"]

SUMMARIES = []


@pytest.mark.timeout(900)
@pytest.mark.parametrize("debug", [False, True], ids=["", "debug"])
@pytest.mark.parametrize("module", MODULES)
def test_cpython_asyncio_module(module, debug):
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    env["PYLOOP_IO_THREADS"] = "0" if debug else "1"
    if debug:
        env["PYTHONASYNCIODEBUG"] = "1"
    out = subprocess.run([sys.executable, "-P", str(RUNNER), module], capture_output=True, text=True,
                         timeout=800, env=env)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else f"{module}: (no summary)"
    SUMMARIES.append(("debug mode " if debug else "") + summary)
    assert out.returncode == 0, f"{summary}\n{out.stderr[-6000:]}"
