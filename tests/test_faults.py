"""The fault and load suite (tests/faults/): each scenario runs in a child
process on asyncio's loop, on pyloop without I/O threads and on pyloop with
one, and must pass on all three, so asyncio pins what is right.

PYLOOP_FAULT_REPORT=FILE appends each run's figures to FILE as JSON lines."""

import json
import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

TESTS = pathlib.Path(__file__).parent
KINDS = {  # kind: (loop, PYLOOP_IO_THREADS)
    "asyncio": ("asyncio", "0"),
    "pyloop": ("pyloop", "0"),
    "pyloop-io": ("pyloop", "1"),
}
SCENARIOS = [
    ("many_connections",),
    ("bulk_transfer", "protocol"),
    ("bulk_transfer", "buffered"),
    ("bulk_transfer", "streams"),
    ("resets_mid_write",),
    ("slow_reader",),
    ("emfile_accept",),
    ("threadsafe_storm",),
    ("loops_in_threads",),
    ("cancellation_storm",),
]
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def run_scenario(scenario, kind):
    loop, io_threads = KINDS[kind]
    env = dict(os.environ, PYTHONPATH=str(TESTS), PYLOOP_IO_THREADS=io_threads)
    # From outside the repository, so the source folder cannot shadow the installed pyloop.
    out = subprocess.run([sys.executable, "-P", "-m", "faults.run", scenario[0], loop, *scenario[1:]],
                         env=env, cwd=TESTS / "faults", capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if report := os.environ.get("PYLOOP_FAULT_REPORT"):
        with open(report, "a") as f:
            f.write(json.dumps({"scenario": " ".join(scenario), "kind": kind, "python": sys.version.split()[0],
                                "free_threaded": FREE_THREADED, **figures}) + "\n")
    return figures


@pytest.mark.timeout(330)
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=" ".join)
def test_scenario(scenario, kind):
    figures = run_scenario(scenario, kind)
    if scenario[0] in ("threadsafe_storm", "loops_in_threads") and FREE_THREADED and os.environ.get("PYTHON_GIL") == "0":
        assert figures["gil"] is False  # they ran in parallel, not taking turns
