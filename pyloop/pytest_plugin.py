"""pyloop's pytest plugin: runs a suite's async tests on pyloop, or on
asyncio's own loop and pyloop both.

It does nothing unless asked: `--pyloop-mode=only` (or `pyloop_mode = only`
in the ini file) runs async tests on `pyloop.Loop` alone, and
`--pyloop-mode=compare` runs each async test once on asyncio's own loop and
once on pyloop's, with the loop in the test's id, so asyncio pins what pyloop
must do. Async tests are found where suites already keep them:

- pytest-asyncio 1.4 or newer, through its `pytest_asyncio_loop_factories`
  hook;
- anyio's plugin, whose default `anyio_backend` fixture is replaced by
  `("asyncio", {"loop_factory": ...})` per loop (a suite that defines its own
  `anyio_backend`, or a test that parametrizes it, keeps its own);
- `unittest.IsolatedAsyncioTestCase` classes that leave `loop_factory` unset.

The loops' names in test ids are `asyncio.EventLoop` and `pyloop.Loop`, class
names that can't be taken for aiohttp's `--aiohttp-loop=pyloop`, which means
asyncio's own loop."""

import asyncio
import importlib.metadata
import unittest

import pytest
from _pytest.mark.structures import get_unpacked_marks

MODES = ("off", "only", "compare")
_LOOPS = pytest.StashKey[dict]()  # the session's loops, by name, from loop_factories()


def pytest_addoption(parser):
    help = ("run async tests on pyloop: 'only' (pyloop.Loop alone), 'compare' "
            "(asyncio.EventLoop and pyloop.Loop, each test once per loop) or 'off'")
    parser.getgroup("pyloop").addoption("--pyloop-mode", choices=MODES, default=None, help=help)
    parser.addini("pyloop_mode", help, default="off")


def loop_factories(config):
    """The loops async tests run on, by the name they show in test ids; empty
    when the plugin is off."""
    mode = config.getoption("pyloop_mode") or config.getini("pyloop_mode").strip() or "off"
    if mode not in MODES:
        raise pytest.UsageError(f"pyloop_mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return {}
    import pyloop  # only now: a suite that leaves the plugin off never loads pyloop

    loops = {"pyloop.Loop": pyloop.new_event_loop}
    if mode == "compare":
        loops = {"asyncio.EventLoop": asyncio.EventLoop, **loops}
    return loops


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    loops = loop_factories(config)
    config.stash[_LOOPS] = loops
    if not loops:
        return
    if hasattr(config.hook, "pytest_asyncio_loop_factories"):  # pytest-asyncio 1.4+
        config.pluginmanager.register(_PytestAsyncioLoops(loops), "pyloop-pytest-asyncio")
    elif any(config.pluginmanager.has_plugin(name) for name in ("asyncio", "pytest_asyncio.plugin")):
        version = importlib.metadata.version("pytest-asyncio")
        raise pytest.UsageError(
            f"pyloop's pytest plugin needs pytest-asyncio 1.4 or newer to run its tests on "
            f"pyloop (found {version}): pip install 'pytest-asyncio>=1.4'"
        )


class _PytestAsyncioLoops:
    """Registered only when the plugin is on: pytest-asyncio takes any
    implementation of its hook as a request to parametrize by loop. The
    first answer wins, and a suite's own implementation comes first."""

    def __init__(self, loops):
        self.loops = loops

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_asyncio_loop_factories(self, config, item):
        return self.loops


@pytest.hookimpl(tryfirst=True)  # before pytest parametrizes anyio's fixture by its params
def pytest_generate_tests(metafunc):
    loops = metafunc.config.stash.get(_LOOPS, {})
    if not loops or "anyio_backend" not in metafunc.fixturenames or chooses_anyio_backend(metafunc):
        return
    definitions = metafunc._arg2fixturedefs.get("anyio_backend", ())
    if not definitions or definitions[-1].func.__module__ != "anyio.pytest_plugin":
        return  # the suite chose its own backends
    backends = [("asyncio", {"loop_factory": factory}) for factory in loops.values()]
    ids = list(loops)
    for other in definitions[-1].params or ():
        if other != "asyncio":  # trio, where it is installed, stays
            backends.append(other)
            ids.append(str(other))
    metafunc.parametrize("anyio_backend", backends, ids=ids, scope="module")


def chooses_anyio_backend(metafunc):
    """Whether the test parametrizes anyio_backend itself."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = names.replace(" ", "").split(",")
        if "anyio_backend" in names:
            return True
    return False


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector, name, obj):
    result = yield
    loops = collector.config.stash.get(_LOOPS, {})
    if not loops or not isinstance(result, pytest.Class) or not _runs_on_asyncio(obj):
        return result
    classes = []
    for loop_name, factory in loops.items():
        subclass = type(obj.__name__, (obj,), {
            "loop_factory": staticmethod(factory),
            "__module__": obj.__module__,
            "__qualname__": obj.__qualname__,
        })
        node_name = name if len(loops) == 1 else f"{name}[{loop_name}]"
        node = type(result).from_parent(collector, name=node_name)
        # pytest would look the class up by the node's name; given it here,
        # the node takes the class's marks as pytest's own lookup would.
        node._obj = subclass
        node.own_markers.extend(get_unpacked_marks(subclass))
        node.keywords.update(subclass.__dict__)
        classes.append(node)
    return classes


def _runs_on_asyncio(obj):
    """Whether obj is an IsolatedAsyncioTestCase that leaves its loop to asyncio."""
    return (isinstance(obj, type) and issubclass(obj, unittest.IsolatedAsyncioTestCase)
            and getattr(obj, "loop_factory", None) is None)
