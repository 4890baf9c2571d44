// Python functions the native code calls on its cold paths (reprs, debug-mode
// stack capture, error reports). They live in pyloop/_handles.py because they
// only format and log; the native side stays free of string formatting.
//
// Threading: set once by pyloop/__init__.py at import, read-only afterwards.
#pragma once

#include <Python.h>

namespace pyloop::py {

struct PythonHelpers {
  PyObject* handle_repr = nullptr;           // handle_repr(handle) -> str
  PyObject* extract_stack = nullptr;         // extract_stack() -> list, caller's stack
  PyObject* report_callback_error = nullptr; // report_callback_error(handle, exc)
  PyObject* log_slow_callback = nullptr;     // log_slow_callback(handle, seconds)
  PyObject* tasks_globals = nullptr;         // asyncio.tasks' namespace
  PyObject* create_task_fallback = nullptr;  // asyncio.BaseEventLoop.create_task
  PyObject* futures_globals = nullptr;       // asyncio.futures' namespace
};

extern PythonHelpers helpers;

// _native._set_helpers(handle_repr, extract_stack, report_callback_error,
//                      log_slow_callback, asyncio.tasks, create_task_fallback, asyncio.futures)
PyObject* set_helpers(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

// The class asyncio's own code would use now: `tasks.Task` and
// `futures.Future` are looked up when called, as asyncio looks them up, so
// code that replaces them (its tests run the pure-Python classes that way)
// gets its own. Returns a new reference or nullptr with an exception set.
PyObject* asyncio_class(PyObject* globals, PyObject* name);

}  // namespace pyloop::py
