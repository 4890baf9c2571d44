// DatagramCore: native paths of pyloop's datagram transport (see
// transport_datagram.cpp). Threading: the loop thread's, like the transport.
#pragma once

#include <Python.h>

namespace pyloop::py {

int register_datagram_core(PyObject* module);
// Made at import by _make_datagram_core(asyncio's _SelectorDatagramTransport),
// whose subclass it is.
PyObject* make_datagram_core(PyObject* module, PyObject* base);

}  // namespace pyloop::py
