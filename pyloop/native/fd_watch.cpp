// add_reader / add_writer: callbacks that run while a fd is readable or
// writable, registered with the loop's own epoll (the Parker), with
// asyncio's selector semantics: one reader and one writer per fd, a new one
// replaces (and cancels) the old, a cancelled handle is unregistered the next
// time its fd is ready, and the callback runs again on every iteration for
// as long as the fd stays ready (level-triggered).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "handle.hpp"
#include "loop_core.hpp"
#include "loop_state.hpp"

namespace pyloop::py {

// A socket an I/O thread reads too (transport_stream.cpp) is registered
// exclusively while only its reader is watched, and then the I/O thread's
// registration is made again, behind the loop's: so the kernel hands a
// readable socket to the loop when it is parked, to the I/O thread when the
// loop is busy (see pyloop/rt/io_thread.hpp). While a writer is watched
// too, the registration is an ordinary one (an exclusive one can't be
// changed in place). An offloaded stream's reader is the I/O thread's
// alone (offload.cpp).
//
// The I/O thread's registration is made again only after the loop has had
// its turn at what is waiting (the link is in rearms_due until then): made
// at once, it would find data already there and take it, and the protocol
// would get it an iteration or more later than from asyncio's loop, which
// reads it in the first iteration that polls after resume_reading(). For
// that turn the loop watches an offloaded stream's reader too.
namespace {

// The loop's own, ordinary registration of fd for `interest` (none: unregistered).
int watch_plainly(LoopState& s, int fd, std::uint32_t interest) {
  if (interest) return s.parker.watch(fd, interest);
  s.parker.unwatch(fd);
  return 0;
}

}  // namespace

int watch_fd(LoopState& s, int fd, std::uint32_t interest) {
  auto it = s.stream_fds.find(fd);
  StreamLink* link = it != s.stream_fds.end() ? it->second : nullptr;
  rt::Stream* stream = link ? link->stream : nullptr;
  const bool reading = interest & rt::readable;
  if (stream) {
    stream->set_paused(!reading);
    if (!reading && std::exchange(link->rearm_due, false)) std::erase(s.rearms_due, link);
  }
  if (stream && stream->offloaded()) {
    if (reading && !std::exchange(link->rearm_due, true)) s.rearms_due.push_back(link);
    // A reader is watched by the loop too, for its turn (until rearm_now).
    return watch_plainly(s, fd, interest);
  }
  if (!interest) return watch_plainly(s, fd, 0);
  if (!stream || interest != rt::readable || !stream->shares_reads()) return s.parker.watch(fd, interest);
  int err = s.parker.watch(fd, rt::readable | rt::exclusive);
  if (!err && !std::exchange(link->rearm_due, true)) s.rearms_due.push_back(link);
  return err;
}

void rearm_now(LoopState& s, StreamLink& link) {
  if (std::exchange(link.rearm_due, false)) {
    std::erase(s.rearms_due, &link);
    // Offloaded, the loop watched the reader for its turn only.
    if (link.stream->offloaded()) {
      int fd = link.stream->fd();
      auto w = s.watchers.find(fd);
      watch_plainly(s, fd, (w != s.watchers.end() ? w->second.interest() : 0u) & ~rt::readable);
    }
  }
  link.io->rearm(*link.stream);
}

void rearm_after_poll(LoopState& s, int count) {
  auto reported = [&](const StreamLink* link) {
    int fd = link->stream->fd();
    return std::any_of(s.ready_fds, s.ready_fds + count,
                       [fd](const rt::ReadyEvent& ev) { return static_cast<int>(ev.token) == fd; });
  };
  // One the poll reported waits for its read callback (end_read).
  std::vector<StreamLink*> quiet;
  for (StreamLink* link : s.rearms_due)
    if (!reported(link)) quiet.push_back(link);
  for (StreamLink* link : quiet) rearm_now(s, *link);
}

void rewatch_fd(LoopState& s, int fd) {
  auto it = s.watchers.find(fd);
  watch_fd(s, fd, it != s.watchers.end() ? it->second.interest() : 0);
}

namespace {

using Slot = HandleObject* FdWatchers::*;

std::uint64_t& added_in(FdWatchers& w, Slot slot) {
  return slot == &FdWatchers::reader ? w.reader_added : w.writer_added;
}

int fd_argument(PyObject* obj, int* fd) {
  long value = PyLong_AsLong(obj);
  if (value == -1 && PyErr_Occurred()) return -1;
  if (value < 0 || value > INT_MAX) {
    PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", value);
    return -1;
  }
  *fd = static_cast<int>(value);
  return 0;
}

PyObject* add_watcher(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs, Slot slot, const char* name) {
  if (nargs < 2) {
    PyErr_Format(PyExc_TypeError, "%s() takes at least 2 arguments (%zd given)", name, nargs);
    return nullptr;
  }
  int fd;
  if (fd_argument(args[0], &fd) < 0 || check_closed(self) < 0) return nullptr;
  // A transport whose blocked writes its I/O thread sends (transport_writes.cpp).
  if (slot == &FdWatchers::writer && take_transport_writer(*self->state, fd, args[1])) Py_RETURN_NONE;
  HandleObject* handle = handle_new(&HandleType, reinterpret_cast<PyObject*>(self), args[1], args + 2, nargs - 2,
                                    nullptr, self->debug);
  if (!handle) return nullptr;
  LoopState& s = *self->state;
  FdWatchers& w = s.watchers[fd];
  HandleObject* old = w.*slot;
  w.*slot = handle;
  added_in(w, slot) = s.iteration;
  if (int err = watch_fd(s, fd, w.interest())) {
    w.*slot = old;
    if (!w.reader && !w.writer) s.watchers.erase(fd);
    Py_DECREF(handle);
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  Py_INCREF(handle);  // one reference for the table, one for the caller
  if (old) {
    int rc = handle_cancel(old);
    Py_DECREF(old);
    if (rc < 0) {
      Py_DECREF(handle);
      return nullptr;
    }
  }
  return reinterpret_cast<PyObject*>(handle);
}

// Unregisters one side of fd. Returns the handle it held (a reference the
// caller owns) or nullptr.
HandleObject* take_watcher(LoopState& s, int fd, Slot slot) {
  auto it = s.watchers.find(fd);
  if (it == s.watchers.end() || !(it->second.*slot)) return nullptr;
  HandleObject* handle = std::exchange(it->second.*slot, nullptr);
  std::uint32_t interest = it->second.interest();
  watch_fd(s, fd, interest);
  if (!interest) s.watchers.erase(it);
  return handle;
}

PyObject* remove_watcher(LoopCoreObject* self, PyObject* arg, Slot slot) {
  int fd;
  if (fd_argument(arg, &fd) < 0) return nullptr;
  if (std::atomic_ref<bool>(self->closed).load(std::memory_order_relaxed)) Py_RETURN_FALSE;
  HandleObject* handle = take_watcher(*self->state, fd, slot);
  if (!handle) Py_RETURN_FALSE;
  int rc = handle_cancel(handle);
  Py_DECREF(handle);
  if (rc < 0) return nullptr;
  Py_RETURN_TRUE;
}

// A ready fd's callback is queued to run in this iteration, unless it was cancelled:
// then it is unregistered instead, as asyncio's _process_events does.
void dispatch(LoopState& s, int fd, Slot slot) {
  auto it = s.watchers.find(fd);
  if (it == s.watchers.end() || !(it->second.*slot)) return;
  HandleObject* handle = it->second.*slot;
  if (handle_cancelled(handle)) {
    Py_DECREF(take_watcher(s, fd, slot));
  } else if (added_in(it->second, slot) == s.iteration) {
    // asyncio polled before the callback that added it ran: the fd's
    // readiness counts from the next poll, which reports it again.
  } else {
    s.polled.push_back(reinterpret_cast<HandleObject*>(Py_NewRef(handle)));
  }
}

}  // namespace

PyObject* loop_add_reader(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return add_watcher(self, args, nargs, &FdWatchers::reader, "_watch_reader");
}
PyObject* loop_add_writer(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return add_watcher(self, args, nargs, &FdWatchers::writer, "_watch_writer");
}
PyObject* loop_remove_reader(LoopCoreObject* self, PyObject* fd) {
  return remove_watcher(self, fd, &FdWatchers::reader);
}
PyObject* loop_remove_writer(LoopCoreObject* self, PyObject* fd) {
  return remove_watcher(self, fd, &FdWatchers::writer);
}

PyObject* loop_watchers_of(LoopCoreObject* self, PyObject* arg) {
  int fd;
  if (fd_argument(arg, &fd) < 0) return nullptr;
  auto it = self->state->watchers.find(fd);
  if (it == self->state->watchers.end()) Py_RETURN_NONE;
  auto* reader = reinterpret_cast<PyObject*>(it->second.reader);
  auto* writer = reinterpret_cast<PyObject*>(it->second.writer);
  return PyTuple_Pack(2, reader ? reader : Py_None, writer ? writer : Py_None);
}

void dispatch_ready_fds(LoopCoreObject* self, int count) {
  LoopState& s = *self->state;
  s.io_events += static_cast<std::size_t>(count);
  for (int i = 0; i < count; ++i) {
    const rt::ReadyEvent& ev = s.ready_fds[i];
    int fd = static_cast<int>(ev.token);
    // As selectors.EpollSelector maps them: hang-ups and errors wake both sides.
    constexpr std::uint32_t both = rt::ReadyEvent::hangup | rt::ReadyEvent::error;
    if (ev.ready & (rt::readable | both)) dispatch(s, fd, &FdWatchers::reader);
    if (ev.ready & (rt::writable | both)) dispatch(s, fd, &FdWatchers::writer);
  }
}

void clear_watchers(LoopCoreObject* self) {
  LoopState& s = *self->state;
  auto watchers = std::move(s.watchers);
  s.watchers.clear();
  for (auto& [fd, w] : watchers) {
    watch_fd(s, fd, 0);
    Py_XDECREF(w.reader);
    Py_XDECREF(w.writer);
  }
}

}  // namespace pyloop::py
