#include "python_helpers.hpp"

#include <iterator>

namespace pyloop::py {

PythonHelpers helpers;

PyObject* set_helpers(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  PyObject** slots[] = {&helpers.handle_repr,       &helpers.extract_stack,
                        &helpers.report_callback_error, &helpers.log_slow_callback,
                        &helpers.tasks_globals,     &helpers.create_task_fallback,
                        &helpers.futures_globals};
  if (nargs != static_cast<Py_ssize_t>(std::size(slots))) {
    PyErr_Format(PyExc_TypeError, "_set_helpers() takes exactly %zu arguments", std::size(slots));
    return nullptr;
  }
  PyObject* values[std::size(slots)];
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    bool module = slots[i] == &helpers.tasks_globals || slots[i] == &helpers.futures_globals;
    if (module ? !PyModule_Check(args[i]) : !PyCallable_Check(args[i])) {
      PyErr_SetString(PyExc_TypeError, "_set_helpers() takes callables, and asyncio.tasks and asyncio.futures");
      return nullptr;
    }
    values[i] = module ? PyModule_GetDict(args[i]) : args[i];
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) Py_XSETREF(*slots[i], Py_NewRef(values[i]));
  Py_RETURN_NONE;
}

PyObject* asyncio_class(PyObject* globals, PyObject* name) {
  PyObject* cls = nullptr;
  if (PyDict_GetItemRef(globals, name, &cls) == 0) PyErr_Format(PyExc_AttributeError, "asyncio has no %U", name);
  return cls;
}

}  // namespace pyloop::py
