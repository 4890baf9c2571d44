// A socket transport shared with an I/O thread (rt::IoThread explains the
// mechanism): attaching and detaching, the loop's turn to read, and handing
// the I/O thread's reads (ReadChunks from the loop's inbox) to the protocol
// in order, holding them while reading is paused.
//
// Threading: the loop thread's. The links live in the LoopState, by stream
// id (for the inbox) and by fd (for the transport's own calls, and for
// fd_watch.cpp, which keeps the registrations in the order the mechanism
// needs). A transport object has no room for the link itself: asyncio's
// transports use __slots__.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <new>
#include <system_error>

#include "loop_core.hpp"
#include "loop_state.hpp"
#include "transport_core.hpp"
#include "transport_datagram.hpp"

namespace pyloop::py {

namespace {

// Interned once: a name made per call would miss CPython's attribute cache.
struct Names {
  PyObject* loop = PyUnicode_InternFromString("_loop");
  PyObject* sock_fd = PyUnicode_InternFromString("_sock_fd");
  PyObject* conn_lost = PyUnicode_InternFromString("_conn_lost");
  PyObject* deliver_backlog = PyUnicode_InternFromString("_deliver_backlog");
};
const Names& names() {
  static const Names interned;
  return interned;
}

LoopState* state_of(PyObject* self) {
  PyObject* loop = PyObject_GetAttr(self, names().loop);
  if (!loop) {
    PyErr_Clear();
    return nullptr;
  }
  LoopState* s = PyObject_TypeCheck(loop, &LoopCoreType) ? reinterpret_cast<LoopCoreObject*>(loop)->state : nullptr;
  Py_DECREF(loop);  // the transport holds the loop
  return s;
}

// The link of the transport whose socket is fd, if an I/O thread shares it.
StreamLink* link_of(PyObject* self, int fd) {
  LoopState* s = state_of(self);
  if (!s || s->stream_fds.empty()) return nullptr;
  auto it = s->stream_fds.find(fd);
  // A closed transport's fd number may belong to a newer one by now.
  return it != s->stream_fds.end() && it->second->transport == self ? it->second : nullptr;
}

}  // namespace

StreamLink* stream_link(PyObject* self) {
  PyObject* fd_obj = PyObject_GetAttr(self, names().sock_fd);
  if (!fd_obj) {
    PyErr_Clear();
    return nullptr;
  }
  long fd = PyLong_AsLong(fd_obj);
  Py_DECREF(fd_obj);
  if (fd == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return nullptr;
  }
  return link_of(self, static_cast<int>(fd));
}

namespace {

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// What an I/O thread makes of the socket fd; false for one it does not
// share: a datagram socket other than UDP's or a Unix one, or one
// getsockopt fails on.
bool socket_kind(int fd, rt::Stream::Kind* kind) {
  int family = 0, type = 0;
  socklen_t len = sizeof family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0) return false;
  len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return false;
  if (type == SOCK_DGRAM) {
    *kind = family == AF_UNIX ? rt::Stream::Kind::unix_datagram : rt::Stream::Kind::datagram;
    return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
  }
  *kind = rt::Stream::Kind::stream;
  return type == SOCK_STREAM;
}

// The loans a loop keeps out for its I/O threads to read into: enough for a
// reactor iteration's reads of a few busy sockets; a read that finds none
// goes to the I/O thread's own buffer and is copied.
constexpr std::size_t loans_per_loop = 8;

// Who may resize a loaned object: its maker only, on a free-threaded build
// (resizing needs the object to be owned by the resizing thread there).
bool resizable_here(const rt::Loan& loan) {
#ifdef Py_GIL_DISABLED
  return loan.tag == PyThread_get_thread_ident();
#else
  (void)loan;
  return true;
#endif
}

// The bytes object for the rest of a chunk's data: the loaned object the
// I/O thread read into, if the chunk has one (no copy; the loan is replaced
// by a new one), else a copy.
PyObject* chunk_bytes(LoopState& s, rt::ReadChunk& chunk, const char* data, std::size_t size) {
  if (!chunk.loan.data || chunk.consumed != 0 || !resizable_here(chunk.loan))
    return PyBytes_FromStringAndSize(data, static_cast<Py_ssize_t>(size));
  auto* bytes = static_cast<PyObject*>(chunk.loan.owner);  // our own object, lent
  chunk.loan = {};
  chunk.lender = nullptr;
  lend_buffers(s);
  // Shrinks in place; only this reference exists, as resizing requires.
  if (_PyBytes_Resize(&bytes, static_cast<Py_ssize_t>(size)) < 0) return nullptr;
  return bytes;
}

// Hands one held chunk (or what is left of it) to the protocol. Returns what
// a read returns: None, or nullptr to propagate.
PyObject* deliver_front(PyObject* self, StreamLink& link) {
  auto* chunk = static_cast<rt::ReadChunk*>(link.backlog.front().get());
  auto finish = [&] {
    link.backlog.pop_front();
    link.stream->chunk_delivered();
  };
  if (link.stream->datagram()) {
    // A datagram (maybe empty) with its sender, or an error for the protocol.
    PyObject* data = nullptr;
    if (chunk->length >= 0 && !(data = chunk_bytes(*link.loop, *chunk, chunk->buffer(), chunk->length))) return nullptr;
    sockaddr_storage sender = chunk->address;
    socklen_t sender_length = chunk->address_length;
    int err = chunk->length < 0 ? chunk->error : 0;
    finish();
    return datagram_delivered(self, data, sender, sender_length, err);
  }
  if (chunk->length <= 0) {
    long n = chunk->length;
    int err = chunk->error;
    finish();
    return transport_received(self, n, err, nullptr);
  }
  int buffered = transport_buffered(self);
  if (buffered < 0) return nullptr;
  const char* data = chunk->buffer() + chunk->consumed;
  std::size_t left = static_cast<std::size_t>(chunk->length) - chunk->consumed;
  if (!buffered) {
    // Built before the chunk goes back to its pool.
    PyObject* bytes = chunk_bytes(*link.loop, *chunk, data, left);
    if (!bytes) return nullptr;
    finish();
    return transport_received(self, static_cast<ssize_t>(left), 0, bytes);
  }
  std::size_t used = 0;
  PyObject* r = transport_received_into(self, data, left, &used);
  // The protocol may have detached the transport (closed it) meanwhile.
  if (StreamLink* now = stream_link(self); now == &link && !link.backlog.empty()) {
    chunk->consumed += used;
    if (chunk->consumed >= static_cast<std::size_t>(chunk->length) || !r || used == 0) finish();
  }
  return r;
}

// Delivers held chunks while the transport is attached, reading and alive.
int drain_backlog(PyObject* self) {
  for (;;) {
    StreamLink* link = stream_link(self);
    if (!link || link->backlog.empty() || link->stream->paused()) return 0;
    PyObject* lost = PyObject_GetAttr(self, names().conn_lost);
    if (!lost) return -1;
    int is_lost = PyObject_IsTrue(lost);
    Py_DECREF(lost);
    if (is_lost) {
      // asyncio reads nothing once the connection is being lost.
      while (!link->backlog.empty()) {
        link->backlog.pop_front();
        link->stream->chunk_delivered();
      }
      return is_lost < 0 ? -1 : 0;
    }
    PyObject* r = deliver_front(self, *link);
    if (!r) return -1;
    Py_DECREF(r);
  }
}

}  // namespace

PyObject* attach_stream(PyObject* self, PyObject* loop) {
  if (!PyObject_TypeCheck(loop, &LoopCoreType)) Py_RETURN_FALSE;
  LoopState& s = *reinterpret_cast<LoopCoreObject*>(loop)->state;
  PyObject* fd_obj = PyObject_GetAttr(self, names().sock_fd);
  if (!fd_obj) return nullptr;
  long fd = PyLong_AsLong(fd_obj);
  Py_DECREF(fd_obj);
  if (fd == -1 && PyErr_Occurred()) return nullptr;
  try {
    rt::IoThread* io = rt::IoThreads::shared().pick();
    if (!io || fd < 0 || s.stream_fds.contains(static_cast<int>(fd))) Py_RETURN_FALSE;
    rt::Stream::Kind kind;
    if (!socket_kind(static_cast<int>(fd), &kind)) Py_RETURN_FALSE;
    std::uint64_t id = s.next_completion_id++;
    auto* link = new StreamLink{new rt::Stream(static_cast<int>(fd), id, s.inbox, kind), io, self, &s};
    // A busy loop's new connection is offloaded from the start (offload.cpp).
    if (kind == rt::Stream::Kind::stream) link->stream->set_offloaded(s.offload.offloaded());
    s.streams.emplace(id, link);
    s.stream_fds.emplace(static_cast<int>(fd), link);
    lend_buffers(s);
  } catch (const std::system_error& e) {
    // No I/O thread could be started: the loop reads this socket alone.
    s.log->warn("no I/O thread for fd {}: {}", fd, e.what());
    Py_RETURN_FALSE;
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  // The I/O thread registers the fd once the loop watches it (fd_watch.cpp).
  Py_RETURN_TRUE;
}

void lend_buffers(LoopState& s) {
  rt::BufferSupply& supply = s.inbox->supply;
  while (supply.size() < loans_per_loop) {
    PyObject* bytes = PyBytes_FromStringAndSize(nullptr, rt::ReadChunk::capacity);
    if (!bytes) {
      PyErr_Clear();  // the I/O threads read into their own buffers meanwhile
      return;
    }
    supply.lend({PyBytes_AS_STRING(bytes), bytes, PyThread_get_thread_ident()});
  }
}

void take_back_loans(LoopState& s) {
  // Chunks still in the inbox lend theirs back as they are released.
  s.inbox->drain([](rt::CompletionPtr) {});
  s.inbox->supply.take_all([](const rt::Loan& loan) { Py_DECREF(static_cast<PyObject*>(loan.owner)); });
}

PyObject* detach_stream(PyObject* self, PyObject*) {
  StreamLink* link = stream_link(self);
  if (!link) Py_RETURN_NONE;
  LoopState& s = *link->loop;
  s.streams.erase(link->stream->id());
  s.stream_fds.erase(link->stream->fd());
  if (link->rearm_due) std::erase(s.rearms_due, link);
  // From here the I/O thread never touches the fd, which may then be closed.
  link->stream->claim_forever();
  forget_writes(*link);
  link->io->retire(link->stream);
  delete link;  // held chunks go back to their pool
  Py_RETURN_NONE;
}

int begin_read(PyObject* self, int fd, StreamLink** out) {
  *out = nullptr;
  // Without I/O threads (the default) no socket is shared.
  if (rt::IoThreads::shared().count() == 0) return 1;
  StreamLink* link = *out = link_of(self, fd);
  if (!link) return 1;
  if (!link->backlog.empty()) return drain_backlog(self);
  // Offloaded, the I/O thread reads alone (a read callback queued before
  // the switch may still run), but for the loop's turn after its reader
  // was registered (fd_watch.cpp).
  if (link->stream->offloaded() && !link->rearm_due) return 0;
  if (!link->stream->try_claim()) return 0;
  if (link->stream->has_undelivered() || link->stream->failed()) {
    link->stream->release();
    return 0;
  }
  return 1;
}

void end_read(StreamLink* link, ssize_t n, int err) {
  if (!link) return;
  if (n < 0 && !would_block(err) && !link->stream->datagram()) link->stream->set_failed();
  link->stream->release();
  // The loop has had its turn at what was waiting (fd_watch.cpp).
  if (link->rearm_due) rearm_now(*link->loop, *link);
}

PyObject* deliver_backlog(PyObject* self, PyObject*) {
  if (StreamLink* link = stream_link(self)) link->delivery_scheduled = false;
  if (drain_backlog(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* held_reads(PyObject* self, PyObject*) {
  StreamLink* link = stream_link(self);
  return PyBool_FromLong(link && !link->backlog.empty());
}

int schedule_call(LoopCoreObject* loop, PyObject* callable, PyObject* const* args, Py_ssize_t nargs) {
  HandleObject* handle = handle_new(&HandleType, reinterpret_cast<PyObject*>(loop), callable, args, nargs, nullptr,
                                    loop->debug);
  if (!handle) return -1;
  loop->state->ready.push_back(handle);  // the queue takes the reference
  return 0;
}

int deliver_chunk(LoopCoreObject* loop, rt::CompletionPtr chunk) {
  LoopState& s = *loop->state;
  auto it = s.streams.find(chunk->id);
  if (it == s.streams.end()) return 0;  // its transport is gone: dropped
  StreamLink& link = *it->second;
  link.backlog.push_back(std::move(chunk));
  if (link.delivery_scheduled) return 0;
  PyObject* method = PyObject_GetAttr(link.transport, names().deliver_backlog);
  if (!method) return -1;
  int rc = schedule_call(loop, method, nullptr, 0);
  Py_DECREF(method);
  if (rc == 0) link.delivery_scheduled = true;
  return rc;
}

}  // namespace pyloop::py
