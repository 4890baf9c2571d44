"""The event loops a benchmark compares, by name. A loop with no build for the
running interpreter is reported as not available, never silently dropped."""

import asyncio
import importlib
import os
import pathlib

# The echo benchmark's native servers, no Python at all (tools/bench builds
# them; they serve the echo modes only): "native" is the limit
# (bench/echo_native_server.cpp, epoll), "native-uring" the same server on
# io_uring (bench/echo_uring_server.cpp).
_BUILT = pathlib.Path(__file__).resolve().parent.parent / "build" / "bench"
NATIVE_SERVERS = {"native": _BUILT / "echo_native_server", "native-uring": _BUILT / "echo_uring_server"}


def _asyncio_factory():
    return asyncio.SelectorEventLoop


def _module_factory(module, attr):
    def factory():
        return getattr(importlib.import_module(module), attr)

    return factory


_FACTORIES = {
    "asyncio": _asyncio_factory,
    "uvloop": _module_factory("uvloop", "new_event_loop"),
    "rloop": _module_factory("rloop", "new_event_loop"),
    "rsloop": _module_factory("rsloop", "new_event_loop"),
    "pyloop": _module_factory("pyloop", "new_event_loop"),
    # pyloop with I/O threads (PYLOOP_IO_THREADS; the default is none).
    "pyloop-io0": _module_factory("pyloop", "new_event_loop"),
    "pyloop-io1": _module_factory("pyloop", "new_event_loop"),
    "pyloop-io4": _module_factory("pyloop", "new_event_loop"),
    # One I/O thread sharing the sockets but never offloading (PYLOOP_OFFLOAD).
    "pyloop-io1-shared": _module_factory("pyloop", "new_event_loop"),
    # pyloop parking at once when idle, and polling up to 50 or 200 us first
    # (PYLOOP_SPIN_US; the default is 100 on two or more cores).
    "pyloop-spin0": _module_factory("pyloop", "new_event_loop"),
    "pyloop-spin50": _module_factory("pyloop", "new_event_loop"),
    "pyloop-spin200": _module_factory("pyloop", "new_event_loop"),
}

# Environment a loop's process needs.
_ENV = {
    "pyloop-io0": {"PYLOOP_IO_THREADS": "0"},
    "pyloop-io1": {"PYLOOP_IO_THREADS": "1"},
    "pyloop-io4": {"PYLOOP_IO_THREADS": "4"},
    "pyloop-io1-shared": {"PYLOOP_IO_THREADS": "1", "PYLOOP_OFFLOAD": "never"},
    **{f"pyloop-spin{us}": {"PYLOOP_SPIN_US": str(us)} for us in (0, 50, 200)},
}

def _native_server(path):
    def factory():
        if not path.exists():
            raise ImportError(f"{path} is not built", name=path.name)
        return path

    return factory


_FACTORIES.update({name: _native_server(path) for name, path in NATIVE_SERVERS.items()})

# pyloop as another commit built it, to measure a change against what came
# before, interleaved in one run: installed with pip's --target into the
# folder PYLOOP_BASELINE names, which goes first on the server's PYTHONPATH.
#     git worktree add /tmp/base COMMIT && cd /tmp/base
#     pip install --no-build-isolation --no-deps --target /tmp/base-site .
#     PYLOOP_BASELINE=/tmp/base-site python bench/saturation.py ... --loops base-io1,pyloop-io1
_BASELINE = os.environ.get("PYLOOP_BASELINE")


def _baseline_factory():
    if not _BASELINE:
        raise ImportError("PYLOOP_BASELINE is not set", name="PYLOOP_BASELINE")
    return _module_factory("pyloop", "new_event_loop")()


for _name, _env in (("base", {}), ("base-io1", {"PYLOOP_IO_THREADS": "1"}),
                    ("base-io1-shared", {"PYLOOP_IO_THREADS": "1", "PYLOOP_OFFLOAD": "never"})):
    _FACTORIES[_name] = _baseline_factory
    _ENV[_name] = {**_env, "PYTHONPATH": _BASELINE or ""}

# What a run compares unless told otherwise.
NAMES = ("asyncio", "uvloop", "rloop", "rsloop", "pyloop")


def versions():
    """Installed versions of the loops (and aiohttp) for the running interpreter."""
    from importlib import metadata

    found = {}
    for package in ("uvloop", "rloop", "rsloop", "pyloop", "aiohttp"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def env_for(name):
    """The environment variables a process running this loop needs."""
    return dict(_ENV.get(name, {}))


def available(names=NAMES):
    """Returns ({name: loop factory}, {name: why it is not available})."""
    found, missing = {}, {}
    for name in names:
        try:
            found[name] = _FACTORIES[name]()
        except ImportError as exc:
            missing[name] = f"not available ({exc.name or exc})"
    return found, missing
