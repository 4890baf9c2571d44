// See transport_subclass.hpp.
#include "transport_subclass.hpp"

namespace pyloop::py {

PyObject* make_transport_subclass(PyTypeObject** made, const char* name, const char* doc, PyObject* base,
                                  std::size_t extra_size, PyMethodDef* methods, PyMemberDef* members,
                                  PyGetSetDef* getset) {
  if (*made) return Py_NewRef(reinterpret_cast<PyObject*>(*made));
  if (!PyType_Check(base)) {
    PyErr_SetString(PyExc_TypeError, "the base must be a class");
    return nullptr;
  }
  PyType_Slot slots[5] = {{Py_tp_doc, const_cast<char*>(doc)}};
  int n = 1;
  if (methods) slots[n++] = {Py_tp_methods, methods};
  if (members) slots[n++] = {Py_tp_members, members};
  if (getset) slots[n++] = {Py_tp_getset, getset};
  slots[n] = {0, nullptr};
  // A negative size: this much beyond the base's, wherever that ends.
  PyType_Spec spec = {name, -static_cast<int>(extra_size), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, slots};
  PyObject* type = PyType_FromSpecWithBases(&spec, base);
  if (!type) return nullptr;
  *made = reinterpret_cast<PyTypeObject*>(Py_NewRef(type));
  return type;
}

PyObject* call_next_method(PyTypeObject* type, PyObject* self, const char* name, PyObject* const* args,
                           std::size_t nargs, PyObject* kwnames) {
  PyObject* super = PyObject_CallFunctionObjArgs(reinterpret_cast<PyObject*>(&PySuper_Type),
                                                 reinterpret_cast<PyObject*>(type), self, nullptr);
  if (!super) return nullptr;
  PyObject* method = PyObject_GetAttrString(super, name);
  Py_DECREF(super);
  if (!method) return nullptr;
  PyObject* r = PyObject_Vectorcall(method, args, nargs, kwnames);
  Py_DECREF(method);
  return r;
}

PyObject* fatal_error(PyObject* self, const char* message) {
  if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) return nullptr;
  PyObject* exc = PyErr_GetRaisedException();
  PyObject* r = PyObject_CallMethod(self, "_fatal_error", "Os", exc, message);
  Py_DECREF(exc);
  if (!r) return nullptr;
  Py_DECREF(r);
  Py_RETURN_NONE;
}

}  // namespace pyloop::py
