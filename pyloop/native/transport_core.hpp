// TransportCore: native fast paths of pyloop's socket transport (see
// transport_core.cpp). Threading: the loop thread's.
#pragma once

#include <Python.h>

namespace pyloop::py {

extern PyTypeObject TransportCoreType;

int register_transport_core(PyObject* module);

}  // namespace pyloop::py
