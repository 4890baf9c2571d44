"""pyloop's pytest plugin (pyloop/pytest_plugin.py), run on small suites with
pytester: which loop each async test ran on, the ids, the counts, a failure
reported with its loop, and the plugin with and without pytest-asyncio and
anyio's plugin loaded. Each async test of a suite writes its id and the
class of its running loop to ran.txt, and the checks read that file."""

import pytest

pytest.importorskip("pytest_asyncio")
pytest.importorskip("anyio")

pytestmark = pytest.mark.timeout(120)

ASYNCIO = "asyncio.unix_events._UnixSelectorEventLoop"
PYLOOP = "pyloop._loop.Loop"

RECORD = """
import asyncio


def record(name):
    loop = type(asyncio.get_running_loop())
    with open("ran.txt", "a") as ran:
        ran.write(f"{name} {loop.__module__}.{loop.__qualname__}\\n")
    return loop.__module__.startswith("pyloop")
"""

PYTEST_ASYNCIO_SUITE = """
import pytest
from record import record


@pytest.mark.asyncio
async def test_loop(request):
    record(request.node.name)


@pytest.mark.asyncio
async def test_fails_on_pyloop(request):
    assert not record(request.node.name)


def test_plain():
    pass
"""

ANYIO_SUITE = """
import pytest
from record import record


@pytest.mark.anyio
async def test_anyio(request, anyio_backend_name):
    if anyio_backend_name != "asyncio":
        pytest.skip("trio, where it is installed")
    record(request.node.name)
"""

UNITTEST_SUITE = """
import asyncio
import unittest
from record import record


class Loops(unittest.IsolatedAsyncioTestCase):
    async def test_loop(self):
        record("Loops.test_loop")


class OwnLoop(unittest.IsolatedAsyncioTestCase):
    loop_factory = asyncio.EventLoop

    async def test_keeps_its_loop(self):
        record("OwnLoop.test_keeps_its_loop")


class Plain(unittest.TestCase):
    def test_plain(self):
        pass
"""


@pytest.fixture
def suite(pytester):
    """Writes the suites; returns a function that runs pytest on them (in a
    subprocess: pytest-asyncio and anyio keep state per process) and returns
    pytest's result and what ran on which loop."""
    pytester.makepyfile(record=RECORD)

    def run(*args, **suites):
        pytester.makepyfile(**suites)
        ran = pytester.path / "ran.txt"
        ran.unlink(missing_ok=True)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *args)
        lines = ran.read_text().splitlines() if ran.exists() else []
        return result, sorted(tuple(line.split()) for line in lines)

    return run


def test_off_unless_asked_for(suite):
    result, ran = suite(test_suite=PYTEST_ASYNCIO_SUITE)
    result.assert_outcomes(passed=3)
    assert ran == [("test_fails_on_pyloop", ASYNCIO), ("test_loop", ASYNCIO)]


def test_only_runs_pytest_asyncio_tests_on_pyloop(suite):
    result, ran = suite("--pyloop-mode=only", test_suite=PYTEST_ASYNCIO_SUITE)
    result.assert_outcomes(passed=2, failed=1)
    assert ran == [("test_fails_on_pyloop", PYLOOP), ("test_loop", PYLOOP)]
    result.stdout.fnmatch_lines(["FAILED test_suite.py::test_fails_on_pyloop - AssertionError: assert not True"])


def test_compare_runs_each_test_once_per_loop_with_the_loop_in_its_id(suite):
    result, ran = suite("--pyloop-mode=compare", test_suite=PYTEST_ASYNCIO_SUITE)
    result.assert_outcomes(passed=4, failed=1)
    assert ran == [
        ("test_fails_on_pyloop[asyncio.EventLoop]", ASYNCIO),
        ("test_fails_on_pyloop[pyloop.Loop]", PYLOOP),
        ("test_loop[asyncio.EventLoop]", ASYNCIO),
        ("test_loop[pyloop.Loop]", PYLOOP),
    ]
    result.stdout.fnmatch_lines([
        "FAILED test_suite.py::test_fails_on_pyloop[[]pyloop.Loop[]] - AssertionError*",
    ])


def test_the_ini_file_sets_the_mode_and_the_command_line_wins(suite, pytester):
    pytester.makeini("[pytest]\npyloop_mode = compare\n")
    result, ran = suite(test_suite=PYTEST_ASYNCIO_SUITE)
    result.assert_outcomes(passed=4, failed=1)
    result, ran = suite("--pyloop-mode=off", test_suite=PYTEST_ASYNCIO_SUITE)
    result.assert_outcomes(passed=3)
    assert {loop for _, loop in ran} == {ASYNCIO}


def test_a_bad_mode_is_a_usage_error(suite, pytester):
    pytester.makeini("[pytest]\npyloop_mode = pyloop\n")
    result, ran = suite(test_suite=PYTEST_ASYNCIO_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pyloop_mode must be one of off, only, compare, not 'pyloop'*"])
    result, ran = suite("--pyloop-mode=both", test_suite=PYTEST_ASYNCIO_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ran == []


def test_an_old_pytest_asyncio_is_told_what_it_needs(suite, pytester):
    # pytest-asyncio before 1.4 has no pytest_asyncio_loop_factories hook.
    pytester.makeconftest("""
import importlib.metadata
real = importlib.metadata.version
importlib.metadata.version = lambda name: "0.23.8" if name == "pytest-asyncio" else real(name)

def pytest_configure(config):
    del config.hook.pytest_asyncio_loop_factories
""")
    result, ran = suite("--pyloop-mode=only", test_suite=PYTEST_ASYNCIO_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs pytest-asyncio 1.4 or newer*found 0.23.8*pytest-asyncio>=1.4*"])
    assert ran == []


def test_anyio_tests_run_on_each_loop(suite):
    result, ran = suite("-p", "no:asyncio", "--pyloop-mode=compare", test_suite=ANYIO_SUITE)
    assert result.parseoutcomes()["passed"] == 2
    assert ran == [("test_anyio[asyncio.EventLoop]", ASYNCIO), ("test_anyio[pyloop.Loop]", PYLOOP)]
    result, ran = suite("-p", "no:asyncio", "--pyloop-mode=only", test_suite=ANYIO_SUITE)
    assert ran == [("test_anyio[pyloop.Loop]", PYLOOP)]
    result, ran = suite("-p", "no:asyncio", test_suite=ANYIO_SUITE)  # off: anyio's own backends
    assert ran == [("test_anyio[asyncio]", ASYNCIO)]


def test_a_suites_own_anyio_backend_is_kept(suite, pytester):
    pytester.makeconftest("""
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"
""")
    result, ran = suite("-p", "no:asyncio", "--pyloop-mode=compare", test_suite=ANYIO_SUITE)
    result.assert_outcomes(passed=1)
    assert ran == [("test_anyio", ASYNCIO)]


def test_a_test_that_chooses_its_anyio_backend_keeps_it(suite):
    result, ran = suite("-p", "no:asyncio", "--pyloop-mode=compare", test_suite=ANYIO_SUITE + """

@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_own_backend(request, anyio_backend):
    record(request.node.name)


@pytest.mark.anyio
@pytest.mark.parametrize(argnames="anyio_backend", argvalues=["asyncio"])
async def test_own_backend_by_keyword(request, anyio_backend):
    record(request.node.name)
""")
    assert result.parseoutcomes()["passed"] == 4
    assert ran == [("test_anyio[asyncio.EventLoop]", ASYNCIO), ("test_anyio[pyloop.Loop]", PYLOOP),
                   ("test_own_backend[asyncio]", ASYNCIO), ("test_own_backend_by_keyword[asyncio]", ASYNCIO)]


def test_pytest_asyncio_and_anyio_together(suite):
    result, ran = suite("--pyloop-mode=compare", test_asyncio_suite=PYTEST_ASYNCIO_SUITE,
                        test_anyio_suite=ANYIO_SUITE)
    result.assert_outcomes(passed=6, failed=1)
    assert [loop for _, loop in ran].count(PYLOOP) == 3


def test_isolated_asyncio_test_cases_only(suite):
    result, ran = suite("-p", "no:asyncio", "-p", "no:anyio", "--pyloop-mode=only", test_suite=UNITTEST_SUITE)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random(["*test_suite.py::Loops::test_loop PASSED*",
                                        "*test_suite.py::OwnLoop::test_keeps_its_loop PASSED*"])
    assert ran == [("Loops.test_loop", PYLOOP), ("OwnLoop.test_keeps_its_loop", ASYNCIO)]


def test_isolated_asyncio_test_cases_compare(suite):
    result, ran = suite("-p", "no:asyncio", "-p", "no:anyio", "--pyloop-mode=compare", test_suite=UNITTEST_SUITE)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines_random([
        "*test_suite.py::Loops[[]asyncio.EventLoop[]]::test_loop PASSED*",
        "*test_suite.py::Loops[[]pyloop.Loop[]]::test_loop PASSED*",
        "*test_suite.py::OwnLoop::test_keeps_its_loop PASSED*",
    ])
    assert ran == [("Loops.test_loop", ASYNCIO), ("Loops.test_loop", PYLOOP),
                   ("OwnLoop.test_keeps_its_loop", ASYNCIO)]


def test_isolated_asyncio_test_cases_keep_their_class_marks(suite):
    marked = UNITTEST_SUITE.replace("class Loops(", "@pytest.mark.skip(reason='marked')\nclass Loops(")
    marked = "import pytest\n" + marked
    result, ran = suite("-p", "no:asyncio", "-p", "no:anyio", "--pyloop-mode=compare", test_suite=marked)
    result.assert_outcomes(passed=2, skipped=2)
    assert ran == [("OwnLoop.test_keeps_its_loop", ASYNCIO)]


def test_isolated_asyncio_test_cases_off(suite):
    result, ran = suite("-p", "no:asyncio", "-p", "no:anyio", test_suite=UNITTEST_SUITE)
    result.assert_outcomes(passed=3)
    assert {loop for _, loop in ran} == {ASYNCIO}


def test_disabled_by_name(suite):
    result, ran = suite("-p", "no:pyloop", "--pyloop-mode=only", test_suite=PYTEST_ASYNCIO_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --pyloop-mode=only*"])
