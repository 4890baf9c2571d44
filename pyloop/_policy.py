"""Deprecated policy shims, kept as uvloop keeps them. Event loop policies are
deprecated since CPython 3.14 and go in 3.16; there pyloop.install and
pyloop.EventLoopPolicy are gone too (pyloop/__init__.py). Prefer pyloop.run()
or asyncio.run(main, loop_factory=pyloop.new_event_loop)."""

import asyncio
import warnings
from asyncio import unix_events

from ._loop import new_event_loop

# The platform's default policy under the name both 3.13 and 3.14 keep (3.14
# deprecates the public asyncio.DefaultEventLoopPolicy; on 3.13 the Unix
# policy also keeps the child watchers).
_BasePolicy = unix_events._UnixDefaultEventLoopPolicy


class EventLoopPolicy(_BasePolicy):
    """An asyncio event loop policy whose loops are pyloop loops (deprecated)."""

    def _loop_factory(self):
        return new_event_loop()


# 3.14's asyncio warns on set_event_loop_policy itself; its private setter
# doesn't, so install() gives one warning, its own, pointing at its caller.
_set_policy = getattr(asyncio.events, "_set_event_loop_policy", asyncio.set_event_loop_policy)


def install():
    """Makes pyloop the loop asyncio creates (deprecated: use pyloop.run())."""
    warnings.warn(
        "pyloop.install() is deprecated; use pyloop.run() or "
        "asyncio.run(..., loop_factory=pyloop.new_event_loop)",
        DeprecationWarning,
        stacklevel=2,
    )
    _set_policy(EventLoopPolicy())
