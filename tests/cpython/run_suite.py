"""Runs modules of CPython's own test_asyncio (shipped with the interpreter)
against pyloop.

    python tests/cpython/run_suite.py test_tasks [test_futures ...]

asyncio's default policy is replaced by pyloop's, so every loop the tests get
from asyncio.new_event_loop(), asyncio.run() or IsolatedAsyncioTestCase is a
pyloop loop. test_events' loop tests are run through a TestCase of our own
whose create_event_loop() returns a pyloop loop, in place of its selector,
poll and epoll variants. Tests listed in exclusions.txt are not run; each line
there gives its reason. Prints one summary line per module and exits non-zero
if any test failed.
"""

import asyncio
import faulthandler
import fnmatch
import importlib
import pathlib
import signal
import sys
import unittest

import pyloop

HERE = pathlib.Path(__file__).parent


def load_exclusions():
    patterns = []
    for line in (HERE / "exclusions.txt").read_text().splitlines():
        pattern = line.split("#", 1)[0].strip()
        if pattern:
            patterns.append(pattern)
    return patterns


class CountingLoop(pyloop.Loop):
    """Counts the loops made, so the report can show the tests really ran on pyloop."""

    created = 0

    def __init__(self):
        super().__init__()
        CountingLoop.created += 1


class Policy(pyloop.EventLoopPolicy):
    def _loop_factory(self):
        return CountingLoop()


def install_pyloop():
    # Tests that name asyncio.EventLoop (as loop_factory, say) get pyloop too.
    asyncio.EventLoop = CountingLoop
    if sys.version_info >= (3, 14):
        # asyncio.DefaultEventLoopPolicy is a deprecated alias of this (a
        # test checks it warns), and the policy asyncio makes by default.
        asyncio.unix_events._DefaultEventLoopPolicy = Policy
    else:
        asyncio.DefaultEventLoopPolicy = Policy
        asyncio.events.DefaultEventLoopPolicy = Policy
    # The private setter: 3.14 deprecates the public one.
    getattr(asyncio.events, "_set_event_loop_policy", asyncio.set_event_loop_policy)(Policy())


# Modules whose loop tests are a mixin run against asyncio's own loops by
# per-loop subclasses: the mixin, the name of its loop factory method, and
# the module's classes that test no loop.
LOOP_MIXINS = {
    "test_events": ("EventLoopTestsMixin", "create_event_loop",
                    ["HandleTests", "TimerTests", "AbstractEventLoopTests", "PolicyTests"]),
    "test_sock_lowlevel": ("BaseSockTestsMixin", "create_event_loop", []),
    "test_sendfile": ("SendfileTestsBase", "create_event_loop", []),
    "test_buffered_proto": ("BaseTestBufferedProtocol", "new_loop", []),
}


def mixin_suite(module, mixin_name, factory_name, other_classes):
    from test.test_asyncio import utils as test_utils

    mixin = getattr(module, mixin_name)
    name = "Pyloop" + mixin_name.removesuffix("Mixin")
    cls = type(name, (mixin, test_utils.TestCase), {factory_name: lambda self: CountingLoop()})
    cls.__module__ = module.__name__
    loader = unittest.defaultTestLoader
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(cls))
    for other in other_classes:
        suite.addTests(loader.loadTestsFromTestCase(getattr(module, other)))
    return suite


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def run_module(name, exclusions):
    module = importlib.import_module(f"test.test_asyncio.{name}")
    if name in LOOP_MIXINS:
        suite = mixin_suite(module, *LOOP_MIXINS[name])
    else:
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    selected = unittest.TestSuite()
    excluded = 0
    for test in iter_tests(suite):
        test_id = test.id().removeprefix("test.test_asyncio.")
        if any(fnmatch.fnmatchcase(test_id, p) for p in exclusions):
            excluded += 1
        else:
            selected.addTest(test)
    before = CountingLoop.created
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(selected)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"{name}: {passed} passed, {failed} failed, {skipped} skipped by the suite itself, "
          f"{excluded} excluded; {CountingLoop.created - before} pyloop loops made", flush=True)
    return failed


def main(names):
    # A hung test prints every thread's stack before the caller's timeout kills us.
    faulthandler.dump_traceback_later(540, exit=True)
    # Started in the background by a non-interactive shell, this process
    # inherits SIGINT ignored: Python then installs no KeyboardInterrupt
    # handler, asyncio.Runner none of its own, and test_runners' interrupt
    # tests wait forever. Restore what a start from a terminal gives.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install_pyloop()
    exclusions = load_exclusions()
    failed = sum(run_module(name, exclusions) for name in names)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
