// TransportCore: the per-message paths of pyloop's socket transport in C++.
//
// pyloop's socket transport is asyncio's _SelectorSocketTransport with this
// type as its first base: reading (_read_ready and its data_received and
// get_buffer variants) and write() run here, everything else (closing, EOF,
// flow control, write buffering, errors) is asyncio's own Python code, which
// these methods call for every case off the fast path. The state stays in
// the transport's attributes, so both halves see the same object.
//
// Threading: the loop thread's, like the transport.
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <cstddef>

#include "transport_core.hpp"
#include "transport_subclass.hpp"

namespace pyloop::py {

namespace {

// Reads at most this much per recv(); see _SocketTransport in pyloop/_loop.py.
constexpr Py_ssize_t read_size = 64 * 1024;
// What one recv() reads on a connection whose last read filled read_size:
// a 100 KiB message then comes in one recv(), not two and an ioctl. It
// stays below glibc's mmap threshold (128 KiB at least), so the bytes
// object is still taken from the heap, not mapped and unmapped per read.
constexpr Py_ssize_t large_read_size = 127 * 1024;
// What one read hands to data_received at most (asyncio's read size).
constexpr Py_ssize_t max_message = 4 * read_size;

struct Names {
  PyObject *conn_lost, *protocol, *sock_fd, *eof, *empty_waiter, *buffer, *fatal_error, *on_eof, *read_ready_cb,
      *data_received, *get_buffer, *buffer_updated, *loop, *add_writer, *write_ready, *maybe_pause, *append;
};
Names names;

int intern_all() {
  struct {
    PyObject** slot;
    const char* text;
  } table[] = {
      {&names.conn_lost, "_conn_lost"},       {&names.protocol, "_protocol"},
      {&names.sock_fd, "_sock_fd"},           {&names.eof, "_eof"},
      {&names.empty_waiter, "_empty_waiter"}, {&names.buffer, "_buffer"},
      {&names.fatal_error, "_fatal_error"},   {&names.on_eof, "_read_ready__on_eof"},
      {&names.read_ready_cb, "_read_ready_cb"}, {&names.data_received, "data_received"},
      {&names.get_buffer, "get_buffer"},      {&names.buffer_updated, "buffer_updated"},
      {&names.loop, "_loop"},                 {&names.add_writer, "_add_writer"},
      {&names.write_ready, "_write_ready"},   {&names.maybe_pause, "_maybe_pause_protocol"},
      {&names.append, "append"},
  };
  for (auto& entry : table)
    if (!(*entry.slot = PyUnicode_InternFromString(entry.text))) return -1;
  return 0;
}

// The attributes of asyncio's transport that the per-message paths read,
// stored in the transport object itself: TransportCore declares them as
// members (like __slots__), so asyncio's `self._conn_lost += 1` and this
// code's reads meet in the same place, without a dictionary lookup.
struct TransportFields {
  PyObject* sock_fd;
  PyObject* conn_lost;
  PyObject* eof;
  PyObject* buffer;
  PyObject* empty_waiter;
  PyObject* protocol;
  PyObject* read_ready_cb;
  // Not read natively: kept here so that an idle transport needs no
  // instance dictionary at all (asyncio sets no other attributes).
  PyObject* sock;
  PyObject* server;
  PyObject* closing;
  PyObject* paused;
  PyObject* protocol_connected;
  PyObject* write_ready;
  // The last read filled read_size: large messages arrive here.
  bool large_reads;
};
using Field = PyObject* TransportFields::*;

PyMemberDef members[] = {
    {"_sock_fd", Py_T_OBJECT_EX, offsetof(TransportFields, sock_fd), Py_RELATIVE_OFFSET, nullptr},
    {"_conn_lost", Py_T_OBJECT_EX, offsetof(TransportFields, conn_lost), Py_RELATIVE_OFFSET, nullptr},
    {"_eof", Py_T_OBJECT_EX, offsetof(TransportFields, eof), Py_RELATIVE_OFFSET, nullptr},
    // Visited and cleared with the others under this name; asyncio's name,
    // _buffer, is the getset below. Writable: CPython's deallocation of a
    // subclass instance (clear_slots) skips read-only members, which would
    // leak the deque of every transport that ever buffered a write.
    {"_pyloop_buffer", Py_T_OBJECT_EX, offsetof(TransportFields, buffer), Py_RELATIVE_OFFSET, nullptr},
    {"_empty_waiter", Py_T_OBJECT_EX, offsetof(TransportFields, empty_waiter), Py_RELATIVE_OFFSET, nullptr},
    {"_protocol", Py_T_OBJECT_EX, offsetof(TransportFields, protocol), Py_RELATIVE_OFFSET, nullptr},
    {"_read_ready_cb", Py_T_OBJECT_EX, offsetof(TransportFields, read_ready_cb), Py_RELATIVE_OFFSET, nullptr},
    {"_sock", Py_T_OBJECT_EX, offsetof(TransportFields, sock), Py_RELATIVE_OFFSET, nullptr},
    {"_server", Py_T_OBJECT_EX, offsetof(TransportFields, server), Py_RELATIVE_OFFSET, nullptr},
    {"_closing", Py_T_OBJECT_EX, offsetof(TransportFields, closing), Py_RELATIVE_OFFSET, nullptr},
    {"_paused", Py_T_OBJECT_EX, offsetof(TransportFields, paused), Py_RELATIVE_OFFSET, nullptr},
    {"_protocol_connected", Py_T_OBJECT_EX, offsetof(TransportFields, protocol_connected), Py_RELATIVE_OFFSET,
     nullptr},
    {"_write_ready", Py_T_OBJECT_EX, offsetof(TransportFields, write_ready), Py_RELATIVE_OFFSET, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

// self.<field> as getattr gives it, borrowed (nullptr with AttributeError
// when unset). Borrowed is safe only until Python code runs.
PyObject* member(PyObject* self, Field field, PyObject* name) {
  auto* data = static_cast<TransportFields*>(PyObject_GetTypeData(self, TransportCoreType));
  PyObject* value = data->*field;
  if (!value) PyErr_SetObject(PyExc_AttributeError, name);
  return value;
}

// asyncio's write buffer, a collections.deque, made only when first used:
// an empty deque costs 760 bytes, a third of an idle connection. asyncio's
// __init__ assigns an empty one, which is dropped; until the buffer is read,
// null stands for it, and the fast write path takes null as empty.
PyObject* get_buffer_field(PyObject* self, void*) {
  auto* data = static_cast<TransportFields*>(PyObject_GetTypeData(self, TransportCoreType));
  if (!data->buffer) {
    PyObject* collections = PyImport_ImportModule("collections");
    data->buffer = collections ? PyObject_CallMethod(collections, "deque", nullptr) : nullptr;
    Py_XDECREF(collections);
  }
  return Py_XNewRef(data->buffer);
}

int set_buffer_field(PyObject* self, PyObject* value, void*) {
  auto* data = static_cast<TransportFields*>(PyObject_GetTypeData(self, TransportCoreType));
  bool empty_deque = value && std::strcmp(Py_TYPE(value)->tp_name, "collections.deque") == 0 && PyObject_Length(value) == 0;
  Py_XSETREF(data->buffer, empty_deque ? nullptr : Py_XNewRef(value));
  return 0;
}

PyGetSetDef getset[] = {
    {"_buffer", get_buffer_field, set_buffer_field, "asyncio's write buffer (made on first use)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// self.<field> is true (for _conn_lost, _eof, ...). -1 on error.
int member_true(PyObject* self, Field field, PyObject* name) {
  PyObject* value = member(self, field, name);
  return value ? PyObject_IsTrue(value) : -1;
}

int fd_of(PyObject* self) {
  PyObject* value = member(self, &TransportFields::sock_fd, names.sock_fd);
  return value ? static_cast<int>(PyLong_AsLong(value)) : -1;
}

PyObject* call_method0(PyObject* self, PyObject* name) { return PyObject_CallMethodNoArgs(self, name); }

// Calls self._protocol.<method>(arg) (arg may be null).
PyObject* call_protocol(PyObject* self, PyObject* method, PyObject* arg) {
  PyObject* protocol = Py_XNewRef(member(self, &TransportFields::protocol, names.protocol));
  if (!protocol) return nullptr;
  PyObject* r = arg ? PyObject_CallMethodOneArg(protocol, method, arg) : PyObject_CallMethodNoArgs(protocol, method);
  Py_DECREF(protocol);
  return r;
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// A read filled its buffer: a large message is arriving. Rather than hand
// it to the protocol in 64 KiB pieces (a data_received, and usually a write,
// per piece), grow the bytes object to what the kernel holds (up to
// max_message) and read that too. Returns the new length.
ssize_t read_rest(int fd, PyObject** data, ssize_t have, int* err) {
  int pending = 0;
  if (ioctl(fd, FIONREAD, &pending) < 0 || pending <= 0) return have;
  ssize_t want = std::min<ssize_t>(pending, max_message - have);
  if (want <= 0 || _PyBytes_Resize(data, have + want) < 0) {
    PyErr_Clear();  // keep what was read; the rest comes on the next round
    return have;
  }
  ssize_t more = recv(fd, PyBytes_AS_STRING(*data) + have, static_cast<std::size_t>(want), 0);
  if (more < 0) *err = errno;
  return more > 0 ? have + more : have;
}

// The end of a read: the error, EOF or the protocol call with what arrived.
// `received` is the data or byte count for the protocol (a new reference,
// or null when n <= 0).
PyObject* finish_read(PyObject* self, ssize_t n, int err, PyObject* method, PyObject* received,
                      const char* protocol_error) {
  if (n < 0) {
    if (would_block(err)) Py_RETURN_NONE;
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return fatal_error(self, "Fatal read error on socket transport");
  }
  if (n == 0) return call_method0(self, names.on_eof);
  if (!received) return nullptr;
  PyObject* r = call_protocol(self, method, received);
  Py_DECREF(received);
  if (!r) return fatal_error(self, protocol_error);
  Py_DECREF(r);
  Py_RETURN_NONE;
}

// Whether the loop reads the socket now, as asyncio's read paths decide
// (nothing once the connection is being lost) and, when an I/O thread
// shares it, begin_read: 1 to read (fd and link set; end_read after), 0 to
// skip, -1 on error.
int read_turn(PyObject* self, int* fd, StreamLink** link) {
  int lost = member_true(self, &TransportFields::conn_lost, names.conn_lost);
  if (lost) return lost < 0 ? -1 : 0;
  *fd = fd_of(self);
  if (*fd < 0 && PyErr_Occurred()) return -1;
  return begin_read(self, *fd, link);
}

PyObject* read_data_received(PyObject* self, PyObject*) {
  int fd;
  StreamLink* link;
  if (int turn = read_turn(self, &fd, &link); turn <= 0) return turn < 0 ? nullptr : Py_NewRef(Py_None);
  // Small messages keep to read_size: a larger block shrunk to 1 KiB per
  // read costs more than it saves (measured, see _SocketTransport).
  auto* fields = static_cast<TransportFields*>(PyObject_GetTypeData(self, TransportCoreType));
  Py_ssize_t size = fields->large_reads ? large_read_size : read_size;
  PyObject* data = PyBytes_FromStringAndSize(nullptr, size);
  if (!data) {
    end_read(link, -1, EAGAIN);
    return nullptr;
  }
  // The socket is non-blocking, so the interpreter is kept across the call.
  ssize_t n = recv(fd, PyBytes_AS_STRING(data), static_cast<std::size_t>(size), 0);
  int err = errno;
  if (n == size) n = read_rest(fd, &data, n, &err);
  fields->large_reads = n >= read_size;
  end_read(link, n, err);
  if (n <= 0) {
    Py_CLEAR(data);
  } else if (_PyBytes_Resize(&data, n) < 0) {
    return nullptr;
  }
  return finish_read(self, n, err, names.data_received, data, "Fatal error: protocol.data_received() call failed.");
}

// get_buffer(-1) as asyncio's _read_ready__get_buffer calls it. On success
// fills view (release it, and DECREF *buf, after) and returns Py_True
// (borrowed); otherwise what the read returns (None when handled, nullptr
// to propagate).
PyObject* protocol_buffer(PyObject* self, PyObject** buf, Py_buffer* view) {
  PyObject* minus_one = PyLong_FromLong(-1);
  if (!minus_one) return nullptr;
  *buf = call_protocol(self, names.get_buffer, minus_one);
  Py_DECREF(minus_one);
  if (!*buf) return fatal_error(self, "Fatal error: protocol.get_buffer() call failed.");
  Py_ssize_t length = PyObject_Length(*buf);
  if (length <= 0) {
    Py_CLEAR(*buf);
    if (length == 0) PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    return fatal_error(self, "Fatal error: protocol.get_buffer() call failed.");
  }
  if (PyObject_GetBuffer(*buf, view, PyBUF_WRITABLE) < 0) {
    Py_CLEAR(*buf);
    return fatal_error(self, "Fatal read error on socket transport");
  }
  return Py_True;
}

PyObject* read_get_buffer(PyObject* self, PyObject*) {
  int fd;
  StreamLink* link;
  if (int turn = read_turn(self, &fd, &link); turn <= 0) return turn < 0 ? nullptr : Py_NewRef(Py_None);
  PyObject* buf = nullptr;
  Py_buffer view;
  PyObject* got = protocol_buffer(self, &buf, &view);
  if (got != Py_True) {
    end_read(link, -1, EAGAIN);
    return got;
  }
  ssize_t n = recv(fd, view.buf, static_cast<std::size_t>(view.len), 0);  // non-blocking
  int err = errno;
  end_read(link, n, err);
  PyBuffer_Release(&view);
  Py_DECREF(buf);
  PyObject* nbytes = n > 0 ? PyLong_FromSsize_t(n) : nullptr;
  return finish_read(self, n, err, names.buffer_updated, nbytes, "Fatal error: protocol.buffer_updated() call failed.");
}

PyObject* read_ready(PyObject* self, PyObject*) {
  PyObject* cb = Py_XNewRef(member(self, &TransportFields::read_ready_cb, names.read_ready_cb));
  if (!cb) return nullptr;
  PyObject* r = PyObject_CallNoArgs(cb);
  Py_DECREF(cb);
  return r;
}

// Everything write() does besides sending right away, in asyncio's order.
// Returns 1 when the fast path applies (bytes-like data, no EOF, no
// sendfile, connection alive, empty buffer), 0 when the caller must take
// asyncio's path, -1 on error.
int fast_write_allowed(PyObject* self, PyObject* data) {
  if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) return 0;
  using F = TransportFields;
  for (auto [field, name] : {std::pair{&F::eof, names.eof}, {&F::conn_lost, names.conn_lost}}) {
    int r = member_true(self, field, name);
    if (r != 0) return r < 0 ? -1 : 0;
  }
  auto* fields = static_cast<TransportFields*>(PyObject_GetTypeData(self, TransportCoreType));
  if (fields->buffer) {  // null: not made yet, so empty
    int r = PyObject_IsTrue(fields->buffer);
    if (r != 0) return r < 0 ? -1 : 0;
  }
  PyObject* waiter = member(self, &F::empty_waiter, names.empty_waiter);
  if (!waiter) return -1;
  return waiter == Py_None ? 1 : 0;
}

// asyncio's own write(), the next one in the MRO.
PyObject* slow_write(PyObject* self, PyObject* data) {
  return call_next_method(TransportCoreType, self, "write", &data, 1);
}

PyObject* write(PyObject* self, PyObject* data) {
  int allowed = fast_write_allowed(self, data);
  if (allowed < 0) return nullptr;
  if (allowed && rt::IoThreads::shared().count()) {
    // Offloaded, the I/O thread sends it, with the iteration's other writes.
    if (StreamLink* link = stream_link(self); link && link->stream->offloaded()) return queue_write(self, *link, data);
  }
  if (!allowed) {
    PyObject* r = slow_write(self, data);
    // What asyncio buffered goes to the I/O thread, if one shares the socket.
    if (r && rt::IoThreads::shared().count()) note_buffered_write(self);
    return r;
  }
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
    PyErr_Clear();
    return slow_write(self, data);  // e.g. a non-contiguous memoryview
  }
  if (view.len == 0) {
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
  }
  int fd = fd_of(self);
  if (fd < 0 && PyErr_Occurred()) {
    PyBuffer_Release(&view);
    return nullptr;
  }
  ssize_t n = send(fd, view.buf, static_cast<std::size_t>(view.len), MSG_NOSIGNAL);
  int err = errno;
  Py_ssize_t total = view.len;
  PyBuffer_Release(&view);
  if (n == total) Py_RETURN_NONE;
  if (n < 0 && !would_block(err)) {
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return fatal_error(self, "Fatal write error on socket transport");
  }
  // Partly sent or would block: keep the rest, as asyncio does.
  PyObject* rest = PyMemoryView_FromObject(data);
  if (!rest) return nullptr;
  if (n > 0) {
    PyObject* sliced = PySequence_GetSlice(rest, n, total);
    Py_DECREF(rest);
    if (!sliced) return nullptr;
    rest = sliced;
  }
  PyObject* loop = PyObject_GetAttr(self, names.loop);
  PyObject* callback = loop ? PyObject_GetAttr(self, names.write_ready) : nullptr;
  PyObject* r = callback ? PyObject_CallMethod(loop, "_add_writer", "iO", fd, callback) : nullptr;
  Py_XDECREF(r);
  Py_XDECREF(callback);
  Py_XDECREF(loop);
  PyObject* buffer = r ? PyObject_GetAttr(self, names.buffer) : nullptr;
  PyObject* appended = buffer ? PyObject_CallMethodOneArg(buffer, names.append, rest) : nullptr;
  Py_XDECREF(appended);
  Py_XDECREF(buffer);
  Py_DECREF(rest);
  if (!appended) return nullptr;
  return call_method0(self, names.maybe_pause);
}

PyMethodDef methods[] = {
    {"_read_ready", read_ready, METH_NOARGS, nullptr},
    {"_read_ready__data_received", read_data_received, METH_NOARGS, nullptr},
    {"_read_ready__get_buffer", read_get_buffer, METH_NOARGS, nullptr},
    {"write", write, METH_O, "Write data to the transport (asyncio.Transport.write)."},
    {"_attach_stream", attach_stream, METH_O, "Lets an I/O thread share the socket; whether one does."},
    {"_detach_stream", detach_stream, METH_NOARGS, "Takes the socket back from the I/O thread."},
    {"_deliver_backlog", deliver_backlog, METH_NOARGS, "Hands reads held while paused to the protocol."},
    {"_held_reads", held_reads, METH_NOARGS, "Whether reads are held for the protocol."},
    {"_io_write_ready", io_write_ready, METH_NOARGS, "_write_ready while an I/O thread does the blocked writes."},
    {"_io_written", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(io_written)), METH_FASTCALL,
     "Takes a report of the I/O thread's writes (see transport_writes.cpp)."},
    {"_io_sendfile", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(io_sendfile)), METH_FASTCALL,
     "Has the I/O thread send a span of a file; False when none shares the socket."},
    {"_io_sendfile_stop", io_sendfile_stop, METH_NOARGS, "Ends the file span the I/O thread is sending."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* transport_received(PyObject* self, ssize_t n, int err, PyObject* data) {
  return finish_read(self, n, err, names.data_received, data, "Fatal error: protocol.data_received() call failed.");
}

PyObject* transport_received_into(PyObject* self, const char* data, std::size_t len, std::size_t* used) {
  *used = 0;
  PyObject* buf = nullptr;
  Py_buffer view;
  PyObject* got = protocol_buffer(self, &buf, &view);
  if (got != Py_True) return got;
  std::size_t n = std::min(len, static_cast<std::size_t>(view.len));
  std::memcpy(view.buf, data, n);
  PyBuffer_Release(&view);
  Py_DECREF(buf);
  *used = n;
  PyObject* nbytes = PyLong_FromSize_t(n);
  return finish_read(self, static_cast<ssize_t>(n), 0, names.buffer_updated, nbytes,
                     "Fatal error: protocol.buffer_updated() call failed.");
}

int transport_buffered(PyObject* self) {
  PyObject* cb = Py_XNewRef(member(self, &TransportFields::read_ready_cb, names.read_ready_cb));
  if (!cb) return -1;
  // asyncio's set_protocol picks the get_buffer variant for a BufferedProtocol.
  bool buffered = PyCFunction_Check(cb) && PyCFunction_GET_FUNCTION(cb) == read_get_buffer;
  Py_DECREF(cb);
  return buffered ? 1 : 0;
}

PyTypeObject* TransportCoreType = nullptr;

int register_transport_core(PyObject*) { return intern_all(); }

PyObject* make_transport_core(PyObject*, PyObject* base) {
  return make_transport_subclass(&TransportCoreType, "pyloop._native.TransportCore",
                                 "asyncio's socket transport with its per-message paths in C++.", base,
                                 sizeof(TransportFields), methods, members, getset);
}

}  // namespace pyloop::py
