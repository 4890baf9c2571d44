"""Deprecated policy shims, kept as uvloop keeps them: event loop policies are
deprecated in CPython 3.14. Prefer pyloop.run() or
asyncio.run(main, loop_factory=pyloop.new_event_loop)."""

import asyncio
import warnings

from ._loop import new_event_loop

# The platform's default policy (on Unix it also keeps the child watchers
# that asyncio 3.13 still exposes); CPython 3.14 renamed it and deprecated
# the public name.
_BasePolicy = getattr(asyncio, "_DefaultEventLoopPolicy", None) or asyncio.DefaultEventLoopPolicy


class EventLoopPolicy(_BasePolicy):
    """An asyncio event loop policy whose loops are pyloop loops (deprecated)."""

    def _loop_factory(self):
        return new_event_loop()


def install():
    """Makes pyloop the loop asyncio creates (deprecated: use pyloop.run())."""
    warnings.warn(
        "pyloop.install() is deprecated; use pyloop.run() or "
        "asyncio.run(..., loop_factory=pyloop.new_event_loop)",
        DeprecationWarning,
        stacklevel=2,
    )
    asyncio.set_event_loop_policy(EventLoopPolicy())
