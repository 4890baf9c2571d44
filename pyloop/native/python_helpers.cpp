#include "python_helpers.hpp"

namespace pyloop::py {

PythonHelpers helpers;

PyObject* set_helpers(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 4) {
    PyErr_SetString(PyExc_TypeError, "_set_helpers() takes exactly 4 arguments");
    return nullptr;
  }
  PyObject** slots[] = {&helpers.handle_repr, &helpers.extract_stack,
                        &helpers.report_callback_error, &helpers.log_slow_callback};
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
