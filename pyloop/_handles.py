"""Cold-path helpers the native Handle and loop call: reprs, debug-mode stack
capture, callback error reports and slow-callback warnings. They reproduce
asyncio.events.Handle's formatting so reprs and log lines read the same."""

import sys
from asyncio import base_events, format_helpers, futures, tasks
from asyncio.log import logger

from . import _native


def handle_repr(handle):
    info = [type(handle).__name__]
    if handle._cancelled:
        info.append("cancelled")
    if handle._callback is not None:
        info.append(
            format_helpers._format_callback_source(
                handle._callback, handle._args, debug=handle._loop.get_debug()
            )
        )
    if handle._source_traceback:
        frame = handle._source_traceback[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    if isinstance(handle, _native.TimerHandle):
        info.insert(2 if handle._cancelled else 1, f"when={handle._when}")
    return "<{}>".format(" ".join(info))


def extract_stack():
    # Frame 0 is this function; frame 1 is whoever called call_soon/call_at,
    # since the native methods in between have no Python frame.
    return format_helpers.extract_stack(sys._getframe(1))


def report_callback_error(handle, exc):
    cb = format_helpers._format_callback_source(
        handle._callback, handle._args, debug=handle._loop.get_debug()
    )
    context = {
        "message": f"Exception in callback {cb}",
        "exception": exc,
        "handle": handle,
    }
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


def log_slow_callback(handle, seconds):
    logger.warning("Executing %s took %.3f seconds", base_events._format_handle(handle), seconds)


_native._set_helpers(
    handle_repr,
    extract_stack,
    report_callback_error,
    log_slow_callback,
    tasks,
    base_events.BaseEventLoop.create_task,
    futures,
)
