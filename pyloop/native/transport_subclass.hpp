// What the native transport types (TransportCore, DatagramCore) share: each
// is made at import as a C subclass of one of asyncio's transport classes,
// runs the per-message paths itself and hands everything else to asyncio's
// method of the same name, the next one in the MRO.
// Threading: the loop thread's, like the transports.
#pragma once

#include <Python.h>

#include <cstddef>

namespace pyloop::py {

// A subclass of `base` named `name` carrying `extra_size` bytes of its own
// (PyObject_GetTypeData), with these methods, members and getsets (either
// may be null). Kept in *made for the process's life; a second call returns it.
PyObject* make_transport_subclass(PyTypeObject** made, const char* name, const char* doc, PyObject* base,
                                  std::size_t extra_size, PyMethodDef* methods, PyMemberDef* members,
                                  PyGetSetDef* getset);

// super(type, self).<name>(*args, **kw), as a vectorcall: asyncio's own method.
PyObject* call_next_method(PyTypeObject* type, PyObject* self, const char* name, PyObject* const* args,
                           std::size_t nargs, PyObject* kwnames = nullptr);

// asyncio's `except (SystemExit, KeyboardInterrupt): raise` / `except
// BaseException as exc: self._fatal_error(exc, message)` for the exception
// set now. None when handled, nullptr to propagate.
PyObject* fatal_error(PyObject* self, const char* message);

}  // namespace pyloop::py
