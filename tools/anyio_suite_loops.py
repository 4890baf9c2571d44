"""The pytest plugin tools/anyio_suite loads into anyio's own test suite: its
asyncio tests run once on asyncio's loop and once on pyloop (both in debug
mode, as the suite's own backends are), and every test's outcome is written
to $ANYIO_SUITE_OUT. Run as a script on that file, it prints the pass counts
per loop and each test whose outcome differs between the loops."""

import collections
import json
import os
import re
import sys

import pytest

LOOPS = ("asyncio", "pyloop")
_outcomes = {}


# Before the suite's own conftest parametrizes anyio_backend by its params.
@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    if "anyio_backend" not in metafunc.fixturenames:
        return
    import asyncio

    import pyloop

    backends = [("asyncio", {"debug": True, "loop_factory": asyncio.EventLoop}),
                ("asyncio", {"debug": True, "loop_factory": pyloop.new_event_loop})]
    metafunc.parametrize("anyio_backend", backends, ids=LOOPS)


def pytest_runtest_logreport(report):
    # The call's outcome, or the setup's or teardown's where that failed or skipped.
    if report.when == "call" or report.outcome != "passed":
        if report.nodeid not in _outcomes or _outcomes[report.nodeid] == "passed":
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            _outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session):
    with open(os.environ["ANYIO_SUITE_OUT"], "w") as out:
        json.dump(_outcomes, out, indent=1)


def summarize(path):
    outcomes = json.load(open(path))
    per_loop = {loop: collections.Counter() for loop in LOOPS}
    by_test = collections.defaultdict(dict)
    for nodeid, outcome in outcomes.items():
        match = re.search(r"\[(asyncio|pyloop)(?:-|\])", nodeid)
        if match:
            per_loop[match[1]][outcome] += 1
            by_test[nodeid.replace(match[0], "[" if match[0].endswith("-") else "]", 1)
                    .replace("[]", "")][match[1]] = outcome
    for loop in LOOPS:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(per_loop[loop].items()))
        print(f"{loop}: {counts}")
    differ = sorted((test, loops) for test, loops in by_test.items()
                    if loops.get("asyncio") != loops.get("pyloop"))
    print(f"tests whose outcome differs: {len(differ)}")
    for test, loops in differ:
        print(f"  {test}: asyncio {loops.get('asyncio')}, pyloop {loops.get('pyloop')}")


if __name__ == "__main__":
    summarize(sys.argv[1])
