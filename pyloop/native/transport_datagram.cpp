// DatagramCore: the per-datagram paths of pyloop's datagram transport in C++.
//
// pyloop's datagram transport is asyncio's _SelectorDatagramTransport with
// this type as its first base: receiving (_read_ready) and sendto() run here
// for IPv4 and IPv6 sockets; everything else (closing, buffering a datagram
// that would block, flow control, other address families, every error case
// off the fast path) is asyncio's own Python code.
//
// asyncio's _read_ready receives into a new 256 KiB bytes object and shrinks
// it: with glibc that allocation is mapped and unmapped around every
// datagram. Here a datagram lands in a per-thread buffer and is copied into
// a bytes object of its own size; up to kBatch datagrams are received per
// readiness, as libuv does, while the protocol keeps the transport reading.
// An I/O thread, when one shares the socket, receives while the loop runs
// Python, as it reads TCP sockets (pyloop/rt/io_thread.hpp): its datagrams
// come through the loop's inbox to datagram_delivered, in order.
//
// Threading: the loop thread's, like the transport.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "socket_address.hpp"
#include "transport_core.hpp"
#include "transport_datagram.hpp"
#include "transport_subclass.hpp"

namespace pyloop::py {

namespace {

constexpr int kBatch = 16;
constexpr int kYes = 1, kNo = 2;

PyObject* max_size_name;
PyObject* datagram_received_name;
PyObject* error_received_name;
PyObject* peername_name;

PyTypeObject* DatagramCoreType = nullptr;

// asyncio's attributes that the per-datagram paths read, stored in the
// transport itself as members (like __slots__), so asyncio's Python code
// and this code meet in the same place without a dictionary lookup; the
// rest of asyncio's attributes are members too, so that a transport needs
// no instance dictionary. _extra and _loop are slots of asyncio's bases.
struct DatagramFields {
  PyObject* sock_fd;
  PyObject* conn_lost;
  PyObject* closing;
  PyObject* paused;
  PyObject* protocol;
  PyObject* address;
  PyObject* buffer;
  PyObject* sock;
  PyObject* server;
  PyObject* protocol_connected;
  PyObject* buffer_size;
  AddressCache addresses;  // its two objects are members below
  int family;              // the socket's, read once; 0 until then
  int peer;                // the socket has a peer: kYes, kNo, or 0 before it is known
};

#define DATAGRAM_MEMBER(name, field, flags) \
  {name, Py_T_OBJECT_EX, offsetof(DatagramFields, field), Py_RELATIVE_OFFSET | (flags), nullptr}
PyMemberDef members[] = {
    DATAGRAM_MEMBER("_sock_fd", sock_fd, 0),
    DATAGRAM_MEMBER("_conn_lost", conn_lost, 0),
    DATAGRAM_MEMBER("_closing", closing, 0),
    DATAGRAM_MEMBER("_paused", paused, 0),
    DATAGRAM_MEMBER("_protocol", protocol, 0),
    DATAGRAM_MEMBER("_address", address, 0),
    DATAGRAM_MEMBER("_buffer", buffer, 0),
    DATAGRAM_MEMBER("_sock", sock, 0),
    DATAGRAM_MEMBER("_server", server, 0),
    DATAGRAM_MEMBER("_protocol_connected", protocol_connected, 0),
    DATAGRAM_MEMBER("_buffer_size", buffer_size, 0),
    // Writable, as every member here must be: CPython's deallocation of a
    // subclass instance (clear_slots) skips read-only members, leaking them.
    DATAGRAM_MEMBER("_pyloop_last_peer", addresses.peer, 0),
    DATAGRAM_MEMBER("_pyloop_last_host", addresses.host, 0),
    {nullptr, 0, 0, 0, nullptr},
};
#undef DATAGRAM_MEMBER

DatagramFields& fields_of(PyObject* self) {
  return *static_cast<DatagramFields*>(PyObject_GetTypeData(self, DatagramCoreType));
}

// Whether a member holds a true value; -1 with AttributeError when unset.
int is_true(PyObject* value, const char* name) {
  if (!value) {
    PyErr_Format(PyExc_AttributeError, "'%s' is not set", name);
    return -1;
  }
  return PyObject_IsTrue(value);
}

int fd_of(DatagramFields& f) {
  if (!f.sock_fd) {
    PyErr_SetString(PyExc_AttributeError, "'_sock_fd' is not set");
    return -1;
  }
  return static_cast<int>(PyLong_AsLong(f.sock_fd));
}

// The transport's socket family (AF_INET, AF_INET6, AF_UNIX, ...), -1 on error.
int family_of(DatagramFields& f, int fd) {
  if (f.family == 0) {
    socklen_t len = sizeof f.family;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &f.family, &len) < 0) {
      PyErr_SetFromErrno(PyExc_OSError);
      return -1;
    }
  }
  return f.family;
}

// asyncio's `if self._extra['peername']` (1 or 0), which does not change
// once the transport exists. -1 on error.
int is_connected(PyObject* self, DatagramFields& f) {
  if (f.peer == 0) {
    PyObject* extra = PyObject_GetAttrString(self, "_extra");
    PyObject* peer = extra ? PyObject_GetItem(extra, peername_name) : nullptr;
    Py_XDECREF(extra);
    int truth = peer ? PyObject_IsTrue(peer) : -1;
    Py_XDECREF(peer);
    if (truth < 0) return -1;
    f.peer = truth ? kYes : kNo;
  }
  return f.peer == kYes ? 1 : 0;
}

// self._protocol.<method>(a[, b]).
PyObject* call_protocol(DatagramFields& f, PyObject* method, PyObject* a, PyObject* b = nullptr) {
  if (!f.protocol) {
    PyErr_SetString(PyExc_AttributeError, "'_protocol' is not set");
    return nullptr;
  }
  PyObject* protocol = Py_NewRef(f.protocol);  // the call may replace it
  PyObject* args[] = {protocol, a, b};
  PyObject* r = PyObject_VectorcallMethod(method, args, b ? 3 : 2, nullptr);
  Py_DECREF(protocol);
  return r;
}

// The OSError for errno `err` handed to protocol.error_received, as asyncio
// does. None, or nullptr when error_received raised.
PyObject* error_received(DatagramFields& f, int err) {
  errno = err;
  PyErr_SetFromErrno(PyExc_OSError);
  PyObject* exc = PyErr_GetRaisedException();
  PyObject* r = call_protocol(f, error_received_name, exc);
  Py_DECREF(exc);
  if (!r) return nullptr;
  Py_DECREF(r);
  Py_RETURN_NONE;
}

// The buffer a datagram lands in: one per thread, as large as max_size.
char* scratch(std::size_t size) {
  thread_local std::vector<char> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

// One datagram to the protocol, as asyncio's _read_ready hands it over.
// 1: delivered, and another may follow; 0: nothing more now (the socket
// would block, or an error was handled as asyncio does); -1: exception set.
int receive_one(PyObject* self, DatagramFields& f, int fd, char* buffer, std::size_t max_size) {
  // When an I/O thread shares the socket: the read claim, held over the
  // syscall only (the protocol may close the transport); 0 when the I/O
  // thread's datagrams go first (they are handed over now).
  StreamLink* link;
  if (int turn = begin_read(self, fd, &link); turn <= 0) return turn;
  sockaddr_storage sa;
  socklen_t len;
  ssize_t n;
  do {
    len = sizeof sa;
    n = recvfrom(fd, buffer, max_size, 0, reinterpret_cast<sockaddr*>(&sa), &len);
  } while (n < 0 && errno == EINTR);  // as the socket module retries (PEP 475)
  int err = errno;
  end_read(link, n, err);
  PyObject* r;
  if (n < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) return 0;
    r = error_received(f, err);
  } else {
    PyObject* data = PyBytes_FromStringAndSize(buffer, n);
    PyObject* address = data ? address_tuple(f.addresses, sa, len) : nullptr;
    if (!address) {
      Py_XDECREF(data);
      r = fatal_error(self, "Fatal read error on datagram transport");
    } else {
      r = call_protocol(f, datagram_received_name, data, address);
      Py_DECREF(data);
      Py_DECREF(address);
      if (r) {
        Py_DECREF(r);
        return 1;
      }
    }
  }
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

// Whether the transport still reads after what the protocol just did: not
// lost, closing or paused. -1 on error.
int still_reading(DatagramFields& f) {
  for (auto [value, name] : {std::pair{f.conn_lost, "_conn_lost"}, {f.closing, "_closing"}, {f.paused, "_paused"}}) {
    int r = is_true(value, name);
    if (r != 0) return r < 0 ? -1 : 0;
  }
  return 1;
}

PyObject* read_ready(PyObject* self, PyObject*) {
  DatagramFields& f = fields_of(self);
  int lost = is_true(f.conn_lost, "_conn_lost");
  if (lost) return lost < 0 ? nullptr : Py_NewRef(Py_None);
  int fd = fd_of(f);
  int family = fd < 0 ? -1 : family_of(f, fd);
  if (family < 0) return nullptr;
  if (family != AF_INET && family != AF_INET6) return call_next_method(DatagramCoreType, self, "_read_ready", nullptr, 0);
  PyObject* max_size_obj = PyObject_GetAttr(self, max_size_name);
  if (!max_size_obj) return nullptr;
  Py_ssize_t max_size = PyLong_AsSsize_t(max_size_obj);
  Py_DECREF(max_size_obj);
  if (max_size < 0) return nullptr;
  char* buffer = scratch(static_cast<std::size_t>(max_size));
  for (int i = 0; i < kBatch; ++i) {
    int got = receive_one(self, f, fd, buffer, static_cast<std::size_t>(max_size));
    if (got <= 0) return got < 0 ? nullptr : Py_NewRef(Py_None);
    int more = still_reading(f);
    if (more <= 0) return more < 0 ? nullptr : Py_NewRef(Py_None);
  }
  Py_RETURN_NONE;
}

// Where a datagram for addr goes without the socket module: the connected
// peer (1, *connected set) or a numeric IPv4/IPv6 address (1, *sa and *len
// set). 0 for an address only the socket module resolves, -1 on error.
int native_destination(PyObject* self, DatagramFields& f, int fd, PyObject* addr, int* connected,
                       sockaddr_storage* sa, socklen_t* len) {
  *connected = is_connected(self, f);
  if (*connected != 0) return *connected;
  int family = family_of(f, fd);
  if (family < 0) return -1;
  if (family != AF_INET && family != AF_INET6) return 0;
  return numeric_sockaddr(f.addresses, family, addr, sa, len) ? 1 : 0;
}

// Whether sendto(data, addr) may send at once here: bytes-like data, a live
// transport with an empty buffer, and an address asyncio would accept as it
// is. 1 yes (with *connected, or *sa/*len set), 0 take asyncio's path, -1 error.
int fast_send_allowed(PyObject* self, DatagramFields& f, PyObject* data, PyObject* addr, int fd, int* connected,
                      sockaddr_storage* sa, socklen_t* len) {
  if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) return 0;
  for (auto [value, name] : {std::pair{f.conn_lost, "_conn_lost"}, {f.buffer, "_buffer"}}) {
    int r = is_true(value, name);
    if (r != 0) return r < 0 ? -1 : 0;
  }
  if (!f.address || !(f.address == Py_None || addr == Py_None || addr == f.address)) return 0;
  return native_destination(self, f, fd, addr, connected, sa, len);
}

// asyncio's sendto, which may add to the buffer: that goes to the I/O
// thread, when one shares the socket, with this iteration's submissions.
PyObject* buffered_sendto(PyObject* self, PyObject* const* args, Py_ssize_t given,
                          PyObject* kwnames = nullptr) {
  PyObject* r = call_next_method(DatagramCoreType, self, "sendto", args, given, kwnames);
  if (r) note_buffered_write(self);
  return r;
}

PyObject* sendto(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Py_ssize_t given = PyVectorcall_NARGS(nargs);
  // Keywords, or a wrong count (asyncio's TypeError): asyncio's sendto.
  if (kwnames || given < 1 || given > 2) return buffered_sendto(self, args, given, kwnames);
  PyObject* data = args[0];
  PyObject* addr = given == 2 ? args[1] : Py_None;
  DatagramFields& f = fields_of(self);
  int fd = fd_of(f);
  if (fd < 0) return nullptr;
  int connected = 0;
  sockaddr_storage sa;
  socklen_t len = 0;
  int allowed = fast_send_allowed(self, f, data, addr, fd, &connected, &sa, &len);
  if (allowed < 0) return nullptr;
  if (!allowed) return buffered_sendto(self, args, given);
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
    PyErr_Clear();
    return buffered_sendto(self, args, given);  // e.g. a non-contiguous memoryview
  }
  ssize_t n;
  do {
    n = connected ? ::send(fd, view.buf, static_cast<std::size_t>(view.len), MSG_NOSIGNAL)
                  : ::sendto(fd, view.buf, static_cast<std::size_t>(view.len), MSG_NOSIGNAL,
                             reinterpret_cast<sockaddr*>(&sa), len);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  PyBuffer_Release(&view);
  if (n >= 0) Py_RETURN_NONE;
  // Would block: asyncio's sendto tries once more and buffers the datagram.
  if (err == EAGAIN || err == EWOULDBLOCK) return buffered_sendto(self, args, given);
  return error_received(f, err);
}

PyMethodDef methods[] = {
    {"_read_ready", read_ready, METH_NOARGS, nullptr},
    {"_sendto_ready", datagram_sendto_ready, METH_NOARGS, nullptr},
    {"_io_datagrams_sent", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(io_datagrams_sent)),
     METH_FASTCALL, "Takes a report of datagrams the I/O thread sent."},
    {"_attach_stream", attach_stream, METH_O, "Lets an I/O thread share the socket; whether one does."},
    {"_detach_stream", detach_stream, METH_NOARGS, "Takes the socket back from the I/O thread."},
    {"_deliver_backlog", deliver_backlog, METH_NOARGS, "Hands datagrams held while paused to the protocol."},
    {"_held_reads", held_reads, METH_NOARGS, "Whether datagrams are held for the protocol."},
    {"sendto", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sendto)),
     METH_FASTCALL | METH_KEYWORDS,
     "Send data to addr, or to the remote address (asyncio.DatagramTransport.sendto)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* datagram_sendto_ready(PyObject* self, PyObject*) {
  if (!stream_link(self)) return call_next_method(DatagramCoreType, self, "_sendto_ready", nullptr, 0);
  note_buffered_write(self);
  Py_RETURN_NONE;
}

int datagram_destination(PyObject* self, PyObject* addr, rt::Destination* to) {
  DatagramFields& f = fields_of(self);
  int fd = fd_of(f);
  if (fd < 0) return -1;
  int connected = 0;
  sockaddr_storage sa;
  socklen_t len = 0;
  int found = native_destination(self, f, fd, addr, &connected, &sa, &len);
  if (found <= 0 || len > sizeof to->address) return found < 0 ? -1 : 0;
  std::memcpy(&to->address, &sa, len);
  to->length = len;  // 0 when connected: send() to the peer, as asyncio's _sendto_ready does
  return 1;
}

PyObject* datagram_delivered(PyObject* self, PyObject* data, const sockaddr_storage& sender, socklen_t length,
                             int err) {
  DatagramFields& f = fields_of(self);
  PyObject* r;
  if (!data) {
    r = error_received(f, err);
  } else {
    PyObject* address = address_tuple(f.addresses, sender, length);
    if (!address) {
      Py_DECREF(data);
      return fatal_error(self, "Fatal read error on datagram transport");
    }
    r = call_protocol(f, datagram_received_name, data, address);
    Py_DECREF(data);
    Py_DECREF(address);
    Py_XDECREF(r);
  }
  if (r) Py_RETURN_NONE;
  if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) return nullptr;
  // What the loop does with an exception from a callback it runs.
  PyObject* exc = PyErr_GetRaisedException();
  PyObject* loop = PyObject_GetAttrString(self, "_loop");
  PyObject* context = loop ? Py_BuildValue("{s:s,s:O,s:O,s:O}", "message",
                                           data ? "Exception in datagram_received()" : "Exception in error_received()",
                                           "exception", exc, "protocol", f.protocol ? f.protocol : Py_None,
                                           "transport", self)
                           : nullptr;
  PyObject* handled = context ? PyObject_CallMethod(loop, "call_exception_handler", "O", context) : nullptr;
  Py_XDECREF(handled);
  Py_XDECREF(context);
  Py_XDECREF(loop);
  Py_DECREF(exc);
  if (!handled) return nullptr;
  Py_RETURN_NONE;
}

int register_datagram_core(PyObject*) {
  struct {
    PyObject** slot;
    const char* text;
  } table[] = {
      {&max_size_name, "max_size"},
      {&datagram_received_name, "datagram_received"}, {&error_received_name, "error_received"},
      {&peername_name, "peername"},
  };
  for (auto& entry : table)
    if (!(*entry.slot = PyUnicode_InternFromString(entry.text))) return -1;
  return 0;
}

PyObject* make_datagram_core(PyObject*, PyObject* base) {
  return make_transport_subclass(&DatagramCoreType, "pyloop._native.DatagramCore",
                                 "asyncio's datagram transport with its per-datagram paths in C++.", base,
                                 sizeof(DatagramFields), methods, members, nullptr);
}

}  // namespace pyloop::py
