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
  PyObject* task_type = nullptr;             // asyncio.Task
  PyObject* create_task_fallback = nullptr;  // asyncio.BaseEventLoop.create_task
  PyObject* future_type = nullptr;           // asyncio.Future
};

extern PythonHelpers helpers;

// _native._set_helpers(handle_repr, extract_stack, report_callback_error,
//                      log_slow_callback, task_type, create_task_fallback, future_type)
PyObject* set_helpers(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

}  // namespace pyloop::py
