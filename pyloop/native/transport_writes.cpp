// Writes an I/O thread sends for a socket transport: the loop's side (the
// mechanism is rt::IoThread's, "Writes").
//
// asyncio's transport keeps its write buffer, a deque of what was written
// and not yet sent, and sends from it when the loop's epoll reports the
// socket writable (_write_ready). While an I/O thread shares the socket,
// _write_ready is _io_write_ready instead, and the loop's epoll is never
// asked about writability: the buffer's new entries are submitted to the
// I/O thread once per loop iteration (submit_writes), their memory pinned
// (PyObject_GetBuffer: the object is kept alive and a bytearray can't be
// resized) and only pointers handed over. Each report of bytes sent
// releases what is done and runs asyncio's bookkeeping (_io_sent in
// pyloop/_loop.py: trimming the buffer, resume_writing, and closing or
// write_eof once the last byte is out). loop.sendfile() hands over a file
// span the same way (_io_sendfile, pyloop/_sendfile.py), reported to
// _io_file_sent.
//
// While anything is pinned the loop sends nothing itself (asyncio's write()
// only sends when its buffer is empty, and _io_write_ready defers), so the
// bytes leave in order.
//
// A datagram transport's buffer holds (data, addr) pairs, which go the same
// way, each with its destination, when its _sendto_ready is asked for (the
// datagram core's, which submits); reports come to _io_datagrams_sent, and
// _io_sent_datagrams (pyloop/_loop.py) does asyncio's bookkeeping. The
// first datagram whose address only the socket module can resolve (a host
// name, a Unix socket's path) is sent by asyncio's own _sendto_ready from
// the loop thread once everything before it is out, with the rest after
// it, until the buffer is empty (_send_from_loop).
//
// Threading: the loop thread's.
#include <algorithm>
#include <iterator>

#include "loop_core.hpp"
#include "loop_state.hpp"
#include "transport_core.hpp"
#include "transport_datagram.hpp"
#include "transport_subclass.hpp"
#include "pyloop/rt/hand_over.hpp"

namespace pyloop::py {

namespace {

struct Names {
  PyObject* conn_lost = PyUnicode_InternFromString("_conn_lost");
  PyObject* buffer = PyUnicode_InternFromString("_buffer");
  PyObject* write_sendmsg = PyUnicode_InternFromString("_write_sendmsg");
  PyObject* io_sent = PyUnicode_InternFromString("_io_sent");
  PyObject* io_file_sent = PyUnicode_InternFromString("_io_file_sent");
  PyObject* io_written = PyUnicode_InternFromString("_io_written");
  PyObject* io_datagrams_sent = PyUnicode_InternFromString("_io_datagrams_sent");
  PyObject* io_sent_datagrams = PyUnicode_InternFromString("_io_sent_datagrams");
  PyObject* send_from_loop = PyUnicode_InternFromString("_send_from_loop");
  PyObject* append = PyUnicode_InternFromString("append");
  PyObject* high_water = PyUnicode_InternFromString("_high_water");
  PyObject* maybe_pause = PyUnicode_InternFromString("_maybe_pause_protocol");
  PyObject* protocol_paused = PyUnicode_InternFromString("_protocol_paused");
  PyObject* empty_waiter = PyUnicode_InternFromString("_empty_waiter");
  PyObject* closing = PyUnicode_InternFromString("_closing");
  PyObject* eof = PyUnicode_InternFromString("_eof");
};
const Names& names() {
  static const Names interned;
  return interned;
}

// While its writes are on their way the link holds the transport: asyncio's
// write buffer keeps a transport alive through the writer callback it
// registers (a close()d one too, until the last byte is out), and a linked
// transport registers none (take_transport_writer).
void hold(StreamLink& link) {
  if (!link.held) link.held = Py_NewRef(link.transport);
}

// Lets go of the transport. Only where the caller holds it as well (a
// method of its own running), since this may be the last reference.
void unhold(StreamLink& link) { Py_CLEAR(link.held); }

void mark_due(StreamLink& link) {
  hold(link);
  if (!link.submit_due) {
    link.submit_due = true;
    link.loop->writes_due.push_back(&link);
  }
}

void release_front(StreamLink& link) {
  PyBuffer_Release(&link.pinned.front());
  link.pinned.pop_front();
  link.front_sent = 0;
}

// `written` more bytes were sent: lets go of the entries that are done, as
// asyncio's _adjust_leftover_buffer trims its deque, and of the empty ones
// then in front (which _io_sent drops from the deque as well).
void release_sent(StreamLink& link, std::size_t written) {
  while (written && !link.pinned.empty()) {
    std::size_t rest = static_cast<std::size_t>(link.pinned.front().len) - link.front_sent;
    if (rest > written) {
      link.front_sent += written;
      break;
    }
    written -= rest;
    release_front(link);
  }
  while (!link.pinned.empty() && static_cast<std::size_t>(link.pinned.front().len) == link.front_sent)
    release_front(link);
}

// transport.<method>(*args) from the ready queue. Takes the args, new
// references (null where making one failed: then -1).
template <std::size_t N>
int schedule_report(LoopCoreObject* loop, PyObject* transport, PyObject* method_name, PyObject* (&args)[N]) {
  PyObject* method = PyObject_GetAttr(transport, method_name);
  int rc = -1;
  if (method && std::none_of(std::begin(args), std::end(args), [](PyObject* a) { return a == nullptr; }))
    rc = schedule_call(loop, method, args, N);
  Py_XDECREF(method);
  for (PyObject* a : args) Py_XDECREF(a);
  return rc;
}

// Whether self.<name> is true; -1 on error.
int attr_true(PyObject* self, PyObject* name) {
  PyObject* value = PyObject_GetAttr(self, name);
  int r = value ? PyObject_IsTrue(value) : -1;
  Py_XDECREF(value);
  return r;
}

// Bytes in asyncio's write buffer: get_write_buffer_size().
Py_ssize_t buffered_size(PyObject* buffer) {
  PyObject* it = PyObject_GetIter(buffer);
  if (!it) return -1;
  Py_ssize_t size = 0;
  while (PyObject* entry = PyIter_Next(it)) {
    Py_ssize_t n = PyObject_Length(entry);
    Py_DECREF(entry);
    if (n < 0) break;
    size += n;
  }
  Py_DECREF(it);
  return PyErr_Occurred() ? -1 : size;
}

// asyncio's _io_sent (pyloop/_loop.py) in the common case of an offloaded
// stream: `written` ends where an entry of the buffer does, and trimming
// the buffer is all there is to do (no error, the connection alive, the
// protocol not paused, and, when the buffer empties, nobody waiting for
// that: no sendfile, close or write_eof). 1: done; 0: take _io_sent; -1:
// error.
int trim_sent(PyObject* self, std::size_t written) {
  for (PyObject* name : {names().conn_lost, names().protocol_paused}) {
    int r = attr_true(self, name);
    if (r != 0) return r < 0 ? -1 : 0;
  }
  PyObject* buffer = PyObject_GetAttr(self, names().buffer);
  if (!buffer) return -1;
  Py_ssize_t count = PyObject_Length(buffer), whole = 0;
  std::size_t total = 0;
  while (whole < count && total < written) {
    PyObject* entry = PySequence_GetItem(buffer, whole);
    Py_ssize_t n = entry ? PyObject_Length(entry) : -1;
    Py_XDECREF(entry);
    if (n <= 0) break;  // an error, or an empty entry: _io_sent's to handle
    total += static_cast<std::size_t>(n);
    ++whole;
  }
  int rc = PyErr_Occurred() ? -1 : total == written ? 1 : 0;
  if (rc == 1 && whole == count) {
    PyObject* waiter = PyObject_GetAttr(self, names().empty_waiter);
    rc = !waiter ? -1 : waiter != Py_None ? 0 : 1;
    Py_XDECREF(waiter);
    for (PyObject* name : {names().closing, names().eof}) {
      if (rc != 1) break;
      int r = attr_true(self, name);
      rc = r < 0 ? -1 : r ? 0 : 1;
    }
  }
  for (Py_ssize_t i = 0; rc == 1 && i < whole; ++i)
    if (PySequence_DelItem(buffer, 0) < 0) rc = -1;
  Py_DECREF(buffer);
  return rc;
}

using Batch = std::vector<std::pair<rt::IoThread*, rt::Submission>>;

// Whether the loop's own epoll watches fd for a writer: asyncio's
// _sendto_ready sends from the loop thread (_send_from_loop).
bool loop_sends(const LoopState& s, int fd) {
  auto it = s.watchers.find(fd);
  return it != s.watchers.end() && it->second.writer;
}

// pin_new_writes for a datagram transport: its buffer's (data, addr) pairs.
// An entry whose address the I/O thread can't take, once it is the first
// not sent, makes asyncio's _sendto_ready send from the loop thread.
int pin_new_datagrams(StreamLink& link, Batch& batch) {
  PyObject* self = link.transport;
  if (loop_sends(*link.loop, link.stream->fd())) return 0;
  PyObject* buffer = PyObject_GetAttr(self, names().buffer);
  if (!buffer) return -1;
  Py_ssize_t count = PyObject_Length(buffer);
  for (auto i = static_cast<Py_ssize_t>(link.pinned.size()); i < count; ++i) {
    PyObject* entry = PySequence_GetItem(buffer, i);
    rt::Destination to;
    Py_buffer view;
    bool pair = entry && PyTuple_Check(entry) && PyTuple_GET_SIZE(entry) == 2;
    int ok = !entry ? -1 : pair ? datagram_destination(self, PyTuple_GET_ITEM(entry, 1), &to) : 0;
    if (ok > 0 && PyObject_GetBuffer(PyTuple_GET_ITEM(entry, 0), &view, PyBUF_SIMPLE) < 0) {
      PyErr_Clear();
      ok = 0;  // asyncio's _sendto_ready will say what is wrong with it
    }
    Py_XDECREF(entry);
    if (ok <= 0) {
      Py_DECREF(buffer);
      if (ok < 0) return -1;
      if (!link.pinned.empty()) return 0;  // its turn comes once those are out
      PyObject* r = PyObject_CallMethodNoArgs(self, names().send_from_loop);
      Py_XDECREF(r);
      return r ? 0 : -1;
    }
    link.pinned.push_back(view);
    rt::Submission send{rt::Submission::Kind::datagram, link.stream, static_cast<const char*>(view.buf),
                        static_cast<std::size_t>(view.len)};
    send.to = to;
    batch.push_back({link.io, send});
  }
  Py_DECREF(buffer);
  return count < 0 ? -1 : 0;
}

// Pins the transport's buffer entries not handed over yet and adds them to
// `batch`. -1 with an exception set only for errors the loop must raise.
int pin_new_writes(StreamLink& link, Batch& batch) {
  PyObject* self = link.transport;
  PyObject* lost = PyObject_GetAttr(self, names().conn_lost);
  int is_lost = lost ? PyObject_IsTrue(lost) : -1;
  Py_XDECREF(lost);
  if (is_lost) return is_lost < 0 ? -1 : 0;  // asyncio sends nothing more once it is lost
  if (link.stream->datagram()) return pin_new_datagrams(link, batch);
  PyObject* buffer = PyObject_GetAttr(self, names().buffer);
  if (!buffer) return -1;
  Py_ssize_t count = PyObject_Length(buffer);
  for (auto i = static_cast<Py_ssize_t>(link.pinned.size()); i < count; ++i) {
    PyObject* entry = PySequence_GetItem(buffer, i);
    Py_buffer view;
    int rc = entry ? PyObject_GetBuffer(entry, &view, PyBUF_SIMPLE) : -1;
    Py_XDECREF(entry);
    if (rc < 0) {
      // What asyncio's sendmsg() would raise for it (a non-contiguous
      // memoryview, say): a write error for this transport only.
      Py_DECREF(buffer);
      PyObject* r = fatal_error(self, "Fatal write error on socket transport");
      Py_XDECREF(r);
      return r ? 0 : -1;
    }
    link.pinned.push_back(view);
    batch.push_back({link.io, {rt::Submission::Kind::write, link.stream, static_cast<const char*>(view.buf),
                               static_cast<std::size_t>(view.len)}});
  }
  Py_DECREF(buffer);
  return count < 0 ? -1 : 0;
}

}  // namespace

PyObject* queue_write(PyObject* self, StreamLink& link, PyObject* data) {
  PyObject* owned = PyBytes_Check(data) ? Py_NewRef(data) : PyBytes_FromObject(data);
  if (!owned) return nullptr;
  if (PyBytes_GET_SIZE(owned) == 0) {
    Py_DECREF(owned);
    Py_RETURN_NONE;
  }
  PyObject* buffer = PyObject_GetAttr(self, names().buffer);
  PyObject* appended = buffer ? PyObject_CallMethodOneArg(buffer, names().append, owned) : nullptr;
  Py_DECREF(owned);
  if (!appended) {
    Py_XDECREF(buffer);
    return nullptr;
  }
  Py_DECREF(appended);
  mark_due(link);
  // _maybe_pause_protocol() does nothing at or below the high-water mark.
  Py_ssize_t size = buffered_size(buffer);
  Py_DECREF(buffer);
  PyObject* high = size >= 0 ? PyObject_GetAttr(self, names().high_water) : nullptr;
  if (!high) return nullptr;
  Py_ssize_t high_water = PyLong_AsSsize_t(high);
  Py_DECREF(high);
  if (high_water == -1 && PyErr_Occurred()) return nullptr;
  if (size <= high_water) Py_RETURN_NONE;
  return PyObject_CallMethodNoArgs(self, names().maybe_pause);
}

int submit_writes(LoopState& s) {
  if (s.writes_due.empty() && s.write_batch.empty()) return 0;
  auto& batch = s.write_batch;  // may hold sendfile submissions already
  int rc = 0;
  // pin_new_writes may run Python code (an error handler), which may add to
  // writes_due: those wait for the next iteration.
  auto due = std::move(s.writes_due);
  s.writes_due.clear();
  std::vector<PyObject*> idle;  // transports with nothing on its way after all
  for (StreamLink* link : due) {
    link->submit_due = false;
    if (rc == 0 && pin_new_writes(*link, batch) < 0) rc = -1;
    if (link->pinned.empty() && !link->submit_due && link->held) idle.push_back(std::exchange(link->held, nullptr));
  }
  // One hand-over per I/O thread, each stream's submissions in order.
  rt::hand_over_by_key(batch, s.write_run,
                       [](rt::IoThread* io, rt::Submission* run, std::size_t n) { io->submit(run, n); });
  // Last: letting one go may run its __del__, which detaches its link.
  for (PyObject* transport : idle) Py_DECREF(transport);
  return rc;
}

int deliver_write_report(LoopCoreObject* loop, rt::CompletionPtr c) {
  auto& report = static_cast<rt::WriteReport&>(*c);
  auto it = loop->state->streams.find(report.id);
  if (it == loop->state->streams.end()) return 0;  // its transport is gone
  if (it->second->stream->datagram()) {
    PyObject* args[] = {PyLong_FromSize_t(report.datagrams), PyLong_FromLong(report.datagram_error)};
    return schedule_report(loop, it->second->transport, names().io_datagrams_sent, args);
  }
  PyObject* args[] = {PyLong_FromSize_t(report.written), PyLong_FromLong(report.error),
                      PyLong_FromSize_t(report.file_sent), PyBool_FromLong(report.file_done),
                      PyLong_FromLong(report.file_error)};
  return schedule_report(loop, it->second->transport, names().io_written, args);
}

void forget_writes(StreamLink& link) {
  auto& due = link.loop->writes_due;
  due.erase(std::remove(due.begin(), due.end(), &link), due.end());
  // Submissions not handed over yet (sendfile's) would follow the retire.
  std::erase_if(link.loop->write_batch, [&](const auto& entry) { return entry.second.stream == link.stream; });
  link.stream->claim_writes_forever();
  while (!link.pinned.empty()) release_front(link);
  unhold(link);
}

bool take_transport_writer(LoopState& s, int fd, PyObject* callback) {
  if (s.stream_fds.empty() || !PyCFunction_Check(callback)) return false;
  if (PyCFunction_GET_FUNCTION(callback) != io_write_ready &&
      PyCFunction_GET_FUNCTION(callback) != datagram_sendto_ready)
    return false;
  auto it = s.stream_fds.find(fd);
  if (it == s.stream_fds.end() || PyCFunction_GET_SELF(callback) != it->second->transport) return false;
  mark_due(*it->second);
  return true;
}

void note_buffered_write(PyObject* self) {
  if (StreamLink* link = stream_link(self)) mark_due(*link);
}

PyObject* io_write_ready(PyObject* self, PyObject*) {
  StreamLink* link = stream_link(self);
  if (!link || link->pinned.empty()) {
    // Nothing at the I/O thread: send from here now, as asyncio would.
    PyObject* r = PyObject_CallMethodNoArgs(self, names().write_sendmsg);
    if (!r) return nullptr;
    Py_DECREF(r);
    link = stream_link(self);  // a failed send loses the connection
  }
  if (link) mark_due(*link);
  Py_RETURN_NONE;
}

PyObject* io_written(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5) {
    PyErr_SetString(PyExc_TypeError, "_io_written(written, errno, file_sent, file_done, file_errno)");
    return nullptr;
  }
  std::size_t written = PyLong_AsSize_t(args[0]);
  long error = PyLong_AsLong(args[1]);
  if ((written == static_cast<std::size_t>(-1) || error == -1) && PyErr_Occurred()) return nullptr;
  int file_progress = PyObject_IsTrue(args[2]) || PyObject_IsTrue(args[3]);
  if (StreamLink* link = stream_link(self)) {
    if (error) {
      // The I/O thread dropped the rest of its queue.
      while (!link->pinned.empty()) release_front(*link);
    } else {
      release_sent(*link, written);
    }
    if (link->pinned.empty() && !link->submit_due) unhold(*link);
  }
  if (file_progress) {
    PyObject* call[] = {self, args[2], args[3], args[4]};
    PyObject* r = PyObject_VectorcallMethod(names().io_file_sent, call, 4, nullptr);
    if (!r) return nullptr;
    Py_DECREF(r);
  }
  if (!written && !error) Py_RETURN_NONE;
  if (!error) {
    int trimmed = trim_sent(self, written);
    if (trimmed < 0) return nullptr;
    if (trimmed) Py_RETURN_NONE;
  }
  PyObject* call[] = {self, args[0], args[1]};
  return PyObject_VectorcallMethod(names().io_sent, call, 3, nullptr);
}

PyObject* io_sendfile(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "_io_sendfile(fileno, offset, count)");
    return nullptr;
  }
  long fileno = PyLong_AsLong(args[0]);
  long long offset = PyLong_AsLongLong(args[1]);
  std::size_t count = PyLong_AsSize_t(args[2]);
  if (PyErr_Occurred()) return nullptr;
  StreamLink* link = stream_link(self);
  if (!link || link->stream->datagram()) Py_RETURN_FALSE;
  rt::Submission send{rt::Submission::Kind::sendfile, link->stream};
  send.length = count;
  send.file_fd = static_cast<int>(fileno);
  send.offset = static_cast<off_t>(offset);
  link->loop->write_batch.push_back({link->io, send});
  Py_RETURN_TRUE;
}

PyObject* io_sendfile_stop(PyObject* self, PyObject*) {
  if (StreamLink* link = stream_link(self))
    link->loop->write_batch.push_back({link->io, {rt::Submission::Kind::stop_sendfile, link->stream}});
  Py_RETURN_NONE;
}

PyObject* io_datagrams_sent(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_io_datagrams_sent(count, errno)");
    return nullptr;
  }
  std::size_t count = PyLong_AsSize_t(args[0]);
  if (count == static_cast<std::size_t>(-1) && PyErr_Occurred()) return nullptr;
  if (StreamLink* link = stream_link(self)) {
    for (; count && !link->pinned.empty(); --count) release_front(*link);
    mark_due(*link);  // what the I/O thread has not had yet, if anything
  }
  PyObject* call[] = {self, args[0], args[1]};
  return PyObject_VectorcallMethod(names().io_sent_datagrams, call, 3, nullptr);
}

}  // namespace pyloop::py
