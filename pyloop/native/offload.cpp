// Offloading: a busy loop hands its streams' socket work to their I/O
// threads, an idle one takes it back (rt::OffloadPolicy says when).
//
// Offloaded, a stream's socket is not in the loop's epoll: its I/O thread
// reads it alone (io_thread.hpp), but for one turn of the loop's after its
// reader is registered (resume_reading, the switch itself: fd_watch.cpp).
// transport.write() queues the data in asyncio's write buffer instead of
// sending it (transport_core.cpp), so that the iteration's writes go to the
// I/O thread in one batch at its end (transport_writes.cpp). The loop makes
// no other socket call for it and waits on its inbox, which the I/O threads
// post their reads and reports to. Order holds across a switch either way:
// bytes already read wait their turn behind the stream's read claim and
// undelivered count (stream.hpp), and asyncio's write() sends by itself
// only once its buffer is empty, that is, once the I/O thread has reported
// everything sent.
//
// Datagram sockets are never offloaded: their reads and sends stay as
// io_thread.hpp describes.
//
// Threading: the loop thread's.
#include <cstdint>
#include <utility>

#include "loop_core.hpp"
#include "loop_state.hpp"

namespace pyloop::py {

void steer_offload(LoopState& s) {
  std::size_t events = std::exchange(s.io_events, 0);
  if (s.streams.empty() && !s.offload.offloaded() && s.offload.mode() != rt::OffloadPolicy::Mode::always) return;
  if (!s.offload.iteration(events)) return;
  bool offloaded = s.offload.offloaded();
  s.log->debug("loop state {}: {} ({} streams)", static_cast<void*>(&s), offloaded ? "offloaded" : "direct",
               s.stream_fds.size());
  for (auto& [fd, link] : s.stream_fds) {
    if (link->stream->datagram()) continue;
    link->stream->set_offloaded(offloaded);
    rewatch_fd(s, fd);
  }
}

PyObject* loop_wake_stats(LoopCoreObject* self, PyObject*) {
  LoopState& s = *self->state;
  auto io = rt::IoThreads::shared().wake_stats();
  const std::pair<const char*, std::uint64_t> counts[] = {
      {"waits", s.parker.waits()}, {"empty_waits", s.parker.empty_waits()}, {"wakes", s.parker.wakes()},
      {"io_waits", io.waits},      {"io_empty_waits", io.empty_waits},      {"io_wakes", io.wakes},
      {"offload_switches", s.offload.switches()},
  };
  PyObject* stats = PyDict_New();
  if (!stats || PyDict_SetItemString(stats, "offloaded", s.offload.offloaded() ? Py_True : Py_False) < 0) {
    Py_XDECREF(stats);
    return nullptr;
  }
  for (const auto& [name, count] : counts) {
    PyObject* value = PyLong_FromUnsignedLongLong(count);
    if (!value || PyDict_SetItemString(stats, name, value) < 0) {
      Py_XDECREF(value);
      Py_DECREF(stats);
      return nullptr;
    }
    Py_DECREF(value);
  }
  return stats;
}

}  // namespace pyloop::py
