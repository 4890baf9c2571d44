"""pyloop.Loop: asyncio's event loop on a native core.

The native base (_native.LoopCore) owns the ready queue, the timer heap and
the parking of the loop thread, and implements call_soon, call_later, call_at,
call_soon_threadsafe, time and the loop iteration. Everything that is not on
the per-callback path (tasks, futures, executors, async generators, exception
handling, debug mode) is asyncio.BaseEventLoop's own code, running on the
native state through LoopCore's attributes (_closed, _stopping, _debug,
_thread_id, ...), so it behaves exactly as asyncio does. add_reader,
add_writer and the sock_* methods come from SocketMethods (_sockets.py).
"""

from asyncio import base_events
from asyncio.log import logger

from . import _handles  # noqa: F401  (registers the native code's helpers)
from . import _native
from ._sockets import SocketMethods


class Loop(_native.LoopCore, SocketMethods, base_events.BaseEventLoop):
    """An asyncio event loop whose core runs natively."""

    def __init__(self):
        base_events.BaseEventLoop.__init__(self)
        # BaseEventLoop makes Python queues the native core replaces; dropping
        # them makes any code path that still reaches for them fail loudly.
        del self._ready
        del self._scheduled

    def run_forever(self):
        self._run_forever_setup()
        try:
            self._run_until_stopped()
        finally:
            self._run_forever_cleanup()

    def close(self):
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._clear_callbacks()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)


def _not_built(name):
    async def method(self, *args, **kwargs):
        raise NotImplementedError(f"pyloop: {name}() is not implemented yet")

    method.__name__ = name
    method.__doc__ = "Not implemented yet: raises NotImplementedError before touching any socket."
    return method


# asyncio.BaseEventLoop's versions of these would open sockets and then fail
# deep inside (leaking them); until pyloop's transports exist they fail first.
for _name in (
    "create_connection",
    "create_server",
    "create_unix_connection",
    "create_unix_server",
    "connect_accepted_socket",
    "create_datagram_endpoint",
    "connect_read_pipe",
    "connect_write_pipe",
    "subprocess_exec",
    "subprocess_shell",
    "start_tls",
    "sendfile",
):
    setattr(Loop, _name, _not_built(_name))
del _name


def new_event_loop():
    """Returns a new pyloop event loop."""
    return Loop()
