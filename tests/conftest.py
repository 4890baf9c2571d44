"""Shared fixtures. Every behaviour both loops have is tested on asyncio's own
loop and on pyloop through the `loop` fixture, so asyncio pins what is right.

The suite runs pyloop with one I/O thread sharing its sockets (unless
PYLOOP_IO_THREADS says otherwise), whatever the machine's default, so the
shared-socket path is what these tests check; tests/test_io_threads.py checks
both settings."""

import asyncio
import gc
import os

import pytest

os.environ.setdefault("PYLOOP_IO_THREADS", "1")  # before pyloop makes its first loop

import pyloop
from faults.measure import fd_count, scheduled_timer_count  # noqa: F401 (tests import them from here)

pytest_plugins = ("pytester",)  # tests/test_pytest_plugin.py runs small suites

LOOP_FACTORIES = {
    "asyncio": asyncio.SelectorEventLoop,
    "pyloop": pyloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_factory(request):
    return LOOP_FACTORIES[request.param]


@pytest.fixture
def loop(loop_factory):
    loop = loop_factory()
    yield loop
    if not loop.is_closed():
        loop.close()
    gc.collect()


def pytest_terminal_summary(terminalreporter):
    from test_cpython_asyncio import SUMMARIES

    if SUMMARIES:
        terminalreporter.section("CPython test_asyncio on pyloop")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
