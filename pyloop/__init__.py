"""pyloop: a drop-in asyncio event loop with a C++20 runtime."""

import asyncio as _asyncio
import sys as _sys
from collections.abc import Coroutine as _Coroutine
from typing import Any as _Any
from typing import TypeVar as _TypeVar

try:
    from . import _native
except ImportError as _error:
    from ._source_folder import explain as _explain

    _explain(_error, __path__[0])
from ._loop import Loop, new_event_loop

__all__ = ("Loop", "build_config", "new_event_loop", "run")
# Event loop policies go in CPython 3.16, and pyloop's shims for them with them.
_POLICY_NAMES = ("EventLoopPolicy", "install")
_POLICIES_REMOVED = _sys.version_info >= (3, 16)
if not _POLICIES_REMOVED:
    __all__ += _POLICY_NAMES
__version__ = _native.build_config()["version"]


_T = _TypeVar("_T")


def run(main: _Coroutine[_Any, _Any, _T], *, debug: bool | None = None) -> _T:
    """Runs the coroutine main on a new pyloop loop, as asyncio.run() does."""
    return _asyncio.run(main, debug=debug, loop_factory=new_event_loop)


def build_config() -> dict[str, _Any]:
    """How this pyloop was built: versions and options, for bug reports."""
    return _native.build_config()


def __getattr__(name: str) -> _Any:
    # The policy shims load on first use, so importing pyloop touches no
    # deprecated asyncio name.
    if name in _POLICY_NAMES and not _POLICIES_REMOVED:
        from . import _policy

        return getattr(_policy, name)
    hint = " (event loop policies were removed in Python 3.16; use pyloop.run())" if name in _POLICY_NAMES else ""
    raise AttributeError(f"module 'pyloop' has no attribute {name!r}{hint}")
