// DatagramCore: native paths of pyloop's datagram transport (see
// transport_datagram.cpp). Threading: the loop thread's, like the transport.
#pragma once

#include <Python.h>
#include <sys/socket.h>

namespace pyloop::py {

int register_datagram_core(PyObject* module);
// Made at import by _make_datagram_core(asyncio's _SelectorDatagramTransport),
// whose subclass it is.
PyObject* make_datagram_core(PyObject* module, PyObject* base);

// A datagram an I/O thread received for the transport (data: a new
// reference, taken), or the error `err` (data null): datagram_received or
// error_received, as asyncio's _read_ready calls them. An exception from the
// protocol goes to the loop's exception handler, as it would from asyncio's
// callback. None, or nullptr for SystemExit and KeyboardInterrupt.
PyObject* datagram_delivered(PyObject* self, PyObject* data, const sockaddr_storage& sender, socklen_t length,
                             int err);

}  // namespace pyloop::py
