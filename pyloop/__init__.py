"""pyloop: a drop-in asyncio event loop with a C++20 runtime."""

import asyncio as _asyncio

from . import _native
from ._loop import Loop, new_event_loop
from ._policy import EventLoopPolicy, install

__all__ = ("EventLoopPolicy", "Loop", "build_config", "install", "new_event_loop", "run")
__version__ = _native.build_config()["version"]


def run(main, *, debug=None):
    """Runs the coroutine main on a new pyloop loop, as asyncio.run() does."""
    return _asyncio.run(main, debug=debug, loop_factory=new_event_loop)


def build_config():
    """How this pyloop was built: versions and options, for bug reports."""
    return _native.build_config()
