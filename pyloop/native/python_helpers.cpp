#include "python_helpers.hpp"

#include <iterator>

namespace pyloop::py {

PythonHelpers helpers;

PyObject* set_helpers(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  PyObject** slots[] = {&helpers.handle_repr,       &helpers.extract_stack,
                        &helpers.report_callback_error, &helpers.log_slow_callback,
                        &helpers.task_type,         &helpers.create_task_fallback,
                        &helpers.future_type};
  if (nargs != static_cast<Py_ssize_t>(std::size(slots))) {
    PyErr_Format(PyExc_TypeError, "_set_helpers() takes exactly %zu arguments", std::size(slots));
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    if (!PyCallable_Check(args[i])) {
      PyErr_SetString(PyExc_TypeError, "_set_helpers() arguments must be callable");
      return nullptr;
    }
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) Py_XSETREF(*slots[i], Py_NewRef(args[i]));
  Py_RETURN_NONE;
}

}  // namespace pyloop::py
