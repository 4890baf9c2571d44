// DatagramCore: native paths of pyloop's datagram transport (see
// transport_datagram.cpp). Threading: the loop thread's, like the transport.
#pragma once

#include <Python.h>
#include <sys/socket.h>

#include "pyloop/rt/write_queue.hpp"

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

// The transport's _sendto_ready: asyncio's, unless an I/O thread shares
// the socket: then the buffer's new datagrams go to it (note_buffered_write).
PyObject* datagram_sendto_ready(PyObject* self, PyObject* unused);

// Where an I/O thread sends a buffered datagram for `addr` (an entry of
// asyncio's buffer): the connected peer, or a numeric IPv4/IPv6 address.
// 1 with *to set, 0 for an address only the socket module resolves (a host
// name, a Unix socket's path), -1 on error.
int datagram_destination(PyObject* self, PyObject* addr, rt::Destination* to);

}  // namespace pyloop::py
