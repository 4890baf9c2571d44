"""The pytest plugin tools/anyio_suite loads into anyio's own test suite: its
asyncio tests run once on asyncio's loop and once on pyloop (both in debug
mode, as the suite's own backends are), and every test's outcome is written
to $ANYIO_SUITE_OUT. Run as a script on that file, it prints the pass counts
per loop and each test whose outcome differs between the loops."""

import collections
import json
import os
import sys

import pytest

LOOPS = ("asyncio", "pyloop")
_tests = {}  # nodeid: {"loop": name or None, "pair": the id without the loop, "outcome": ...}
_own_backends = set()
_LOOP_OF = {}  # loop factory: its name in LOOPS


# Before the suite's own conftest parametrizes anyio_backend by its params.
@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    import asyncio

    import pyloop
    from pyloop.pytest_plugin import chooses_anyio_backend

    if "anyio_backend" not in metafunc.fixturenames:
        return
    _LOOP_OF.update({asyncio.EventLoop: "asyncio", pyloop.new_event_loop: "pyloop"})
    backends = [("asyncio", {"debug": True, "loop_factory": factory}) for factory in _LOOP_OF]
    if not chooses_anyio_backend(metafunc):
        metafunc.parametrize("anyio_backend", backends, ids=LOOPS)
    elif not _swap_own_asyncio_backends(metafunc.definition, backends):
        _own_backends.add(metafunc.definition.nodeid)  # it keeps its own, on asyncio's loop


def _swap_own_asyncio_backends(definition, backends):
    """A test that chooses asyncio backends of its own (the suite's asyncio,
    uvloop and eager-task loops) gets the two loops instead."""
    for node in reversed(definition.listchain()):  # the function's marks, then its class's
        for i, mark in enumerate(node.own_markers):
            if mark.name == "parametrize" and mark.args[0] == "anyio_backend":
                values = [getattr(value, "values", (value,))[0] for value in mark.args[1]]
                if not all(value == "asyncio" or value[0] == "asyncio" for value in values):
                    return False
                node.own_markers[i] = pytest.mark.parametrize("anyio_backend", backends, ids=LOOPS).mark
                return True
    return False


def pytest_collection_finish(session):
    for item in session.items:  # what runs, after -k and the like
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("anyio_backend") if callspec else None
        loop = None
        if isinstance(backend, tuple):
            loop = _LOOP_OF.get(backend[1].get("loop_factory"))
        pair = item.nodeid
        if loop:
            others = callspec.id.split("-")
            others.remove(loop)
            pair = item.nodeid.replace(f"[{callspec.id}]", f"[{'-'.join(others)}]" if others else "")
        _tests[item.nodeid] = {"loop": loop, "pair": pair, "outcome": "not run"}


def pytest_runtest_logreport(report):
    # The call's outcome, or the setup's or teardown's where that failed or skipped.
    test = _tests.get(report.nodeid)
    if test is None or not (report.when == "call" or report.outcome != "passed"):
        return
    if test["outcome"] in ("not run", "passed"):
        test["outcome"] = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome


def pytest_sessionfinish(session):
    with open(os.environ["ANYIO_SUITE_OUT"], "w") as out:
        json.dump({"tests": _tests, "own_backends": sorted(_own_backends)}, out, indent=1)


def summarize(path):
    with open(path) as file:
        record = json.load(file)
    per_loop = collections.defaultdict(collections.Counter)
    pairs = collections.defaultdict(dict)
    for test in record["tests"].values():
        per_loop[test["loop"]][test["outcome"]] += 1
        if test["loop"]:
            pairs[test["pair"]][test["loop"]] = test["outcome"]

    def counts(loop):
        return ", ".join(f"{n} {outcome}" for outcome, n in sorted(per_loop[loop].items()))

    for loop in LOOPS:
        print(f"{loop}: {counts(loop)}")
    print(f"tests that run on no loop, or on their own backend ({len(record['own_backends'])} "
          f"of them choose one): {counts(None)}")
    differ = sorted((pair, loops) for pair, loops in pairs.items() if loops.get("asyncio") != loops.get("pyloop"))
    print(f"tests whose outcome differs: {len(differ)}")
    for pair, loops in differ:
        print(f"  {pair}: asyncio {loops.get('asyncio')}, pyloop {loops.get('pyloop')}")


if __name__ == "__main__":
    summarize(sys.argv[1])
