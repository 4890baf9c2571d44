// One iteration of the loop. The callbacks run in the order asyncio's
// BaseEventLoop._run_once runs them; only the poll sits elsewhere.
//
// asyncio polls, then runs one batch: the callbacks queued before the poll,
// then those of the fds it found and the due timers. What the batch
// schedules waits for the next iteration, after the next poll. Here an
// iteration runs the callbacks queued before it, then polls, then runs the
// fds' callbacks and the due timers. The sequence of callbacks is the same;
// the poll moves from between an I/O callback and what it scheduled to
// after both. So that timers and fds keep asyncio's order too, a timer that
// the queued callbacks scheduled is not due in the same iteration, and a
// reader or writer they added misses its poll: asyncio would first run
// either in the batch after what they scheduled. Unless the poll waits:
// then the queued callbacks left nothing to run, and this is the poll where
// asyncio, having polled with timeout 0 and run the rest of its batch,
// would wait.
//
// That keeps a busy server's connections in one batch. A stream's
// data_received wakes its task with call_soon, and the task writes the
// reply. With asyncio's order, a poll between the two catches the peers
// that answered the previous batch early, so the connections split into
// two halves that alternate, half of them per poll (stream echo, 10 KiB, 11
// connections: mostly 4-6 events per epoll_wait). Polling after the task
// ran catches them together (mostly 9-11), as libuv's loop order does: 0.12
// epoll_wait calls per request instead of 0.19. And when the queued
// callbacks schedule nothing, the poll waits at once, where asyncio first
// polls with timeout 0.
#include <algorithm>
#include <cerrno>
#include <vector>

#include "handle.hpp"
#include "loop_core.hpp"
#include "loop_state.hpp"
#include "pyloop/rt/clock.hpp"
#include "python_helpers.hpp"
#include "transport_core.hpp"

namespace pyloop::py {

namespace {

// asyncio's constants: compact the heap once more than half of at least 100
// timers are cancelled; never wait longer than a day in one go.
constexpr std::size_t min_scheduled_for_compaction = 100;
constexpr double max_wait_seconds = 24 * 3600.0;

void prune_cancelled_timers(LoopState& s) {
  std::size_t scheduled = s.timers.size();
  std::size_t cancelled = s.timer_cancelled_count.load(std::memory_order_relaxed);
  if (scheduled > min_scheduled_for_compaction && cancelled * 2 > scheduled) {
    std::vector<TimerHandleObject*> removed;
    s.timers.remove_if([](TimerHandleObject* t) { return handle_cancelled(&t->base); },
                       [&](TimerHandleObject* t) { removed.push_back(t); });
    s.timer_cancelled_count.store(0, std::memory_order_relaxed);
    for (TimerHandleObject* t : removed) {
      timer_set_scheduled(t, false);
      Py_DECREF(t);
    }
    return;
  }
  while (!s.timers.empty() && handle_cancelled(&s.timers.top().payload->base)) {
    s.timer_cancelled_count.fetch_sub(1, std::memory_order_relaxed);
    TimerHandleObject* t = s.timers.pop();
    timer_set_scheduled(t, false);
    Py_DECREF(t);
  }
}

// Polls for up to the spin policy's window, then parks until a wake-up, a
// watched fd or the deadline (timeout 0: polls the watched fds once), then
// queues the ready fds' callbacks. Returns -1 when a signal handler raised.
int wait_for_work(LoopCoreObject* self, double timeout) {
  LoopState& s = *self->state;
  auto has_work = [&s] { return s.has_remote_work(); };
  int n = 0;
  bool park = true;
  double idle_since = timeout != 0.0 && s.spin.enabled() ? rt::monotonic_seconds() : 0.0;
  if (timeout == 0.0) {
    // A poll returns at once; keeping the interpreter saves two hand-overs.
    n = s.parker.park(0.0, [] { return false; }, s.ready_fds);
    park = false;
  } else if (double window = s.spin.window(); window > 0.0) {
    double spin_for = timeout < 0.0 ? window : std::min(window, timeout);
    Py_BEGIN_ALLOW_THREADS
    n = s.parker.spin(spin_for, has_work, s.ready_fds);
    Py_END_ALLOW_THREADS
    // A signal that came while spinning interrupted no wait: its Python
    // handler runs now, before the park that it would not end.
    if (PyErr_CheckSignals() < 0) return -1;
    park = n == 0 && !s.has_remote_work() && (timeout < 0.0 || spin_for < timeout);
    if (park && timeout > 0.0) timeout -= spin_for;
  }
  if (park) {
    Py_BEGIN_ALLOW_THREADS
    n = s.parker.park(timeout, has_work, s.ready_fds);
    Py_END_ALLOW_THREADS
    if (s.spin.enabled()) s.spin.waited(rt::monotonic_seconds() - idle_since);
  }
  // A signal interrupted the wait: run Python-level handlers now, as
  // asyncio's select() does, so Ctrl+C reaches the loop at once.
  if (n == -EINTR && PyErr_CheckSignals() < 0) return -1;
  if (n > 0) dispatch_ready_fds(self, n);
  if (n >= 0 && !s.rearms_due.empty()) rearm_after_poll(s, n);
  return 0;
}

// Debug mode: asyncio records the running handle and logs slow callbacks.
int run_debug(LoopCoreObject* self, HandleObject* h) {
  auto* me = reinterpret_cast<PyObject*>(self);
  Py_XSETREF(self->current_handle, Py_NewRef(reinterpret_cast<PyObject*>(h)));
  double t0 = rt::monotonic_seconds();
  int rc = handle_run(h);
  double dt = rt::monotonic_seconds() - t0;
  Py_XSETREF(self->current_handle, Py_NewRef(Py_None));
  if (rc < 0) return rc;
  PyObject* limit = PyObject_GetAttrString(me, "slow_callback_duration");
  if (!limit) return -1;
  double slow = PyFloat_AsDouble(limit);
  Py_DECREF(limit);
  if (slow == -1.0 && PyErr_Occurred()) return -1;
  if (dt >= slow) {
    PyObject* seconds = PyFloat_FromDouble(dt);
    if (!seconds) return -1;
    PyObject* r = PyObject_CallFunctionObjArgs(helpers.log_slow_callback, reinterpret_cast<PyObject*>(h),
                                               seconds, nullptr);
    Py_DECREF(seconds);
    if (!r) return -1;
    Py_DECREF(r);
  }
  return 0;
}

// Runs the first `count` handles of `queue`; what they schedule queues
// behind them.
int run_handles(LoopCoreObject* self, rt::RingQueue<HandleObject*>& queue, std::size_t count) {
  for (; count > 0; --count) {
    HandleObject* h = queue.pop_front();
    int rc = self->debug ? run_debug(self, h) : handle_run(h);
    Py_DECREF(h);
    if (rc < 0) return -1;
  }
  return 0;
}

}  // namespace

int run_once(LoopCoreObject* self) {
  LoopState& s = *self->state;
  ++s.iteration;
  // I/O callbacks an exception cut short last time still belong to its batch.
  if (run_handles(self, s.polled, s.polled.size()) < 0) return -1;
  s.drain_remote();
  // Callbacks scheduled by these wait for the next iteration.
  if (run_handles(self, s.ready, s.ready.size()) < 0) return -1;
  prune_cancelled_timers(s);

  double timeout = -1.0;  // no deadline: wait for a wake-up
  if (!s.ready.empty() || self->stopping) {
    timeout = 0.0;
  } else if (!s.timers.empty()) {
    timeout = std::clamp(s.timers.top().when - rt::monotonic_seconds(), 0.0, max_wait_seconds);
  }
  // What the queued callbacks added counts in a poll that waits (see the top).
  if (timeout != 0.0) ++s.iteration;
  // Between the callbacks and the poll, no read of the loop's is under way.
  steer_offload(s);
  // This iteration's hand-over to the I/O threads, before waiting on them.
  if (submit_writes(s) < 0) return -1;
  // With nothing watched and work ready, there is nothing to ask the kernel.
  if (timeout != 0.0 || !s.watchers.empty()) {
    if (wait_for_work(self, timeout) < 0) return -1;
    s.drain_remote();
  }
  if (!s.inbox->empty() && deliver_completions(self) < 0) return -1;

  // Timers due within the clock's resolution count as due, as in asyncio.
  double end_time = rt::monotonic_seconds() + self->clock_resolution;
  std::vector<TimerHandleObject*> not_due;  // allocates only when used
  while (!s.timers.empty() && s.timers.top().when < end_time) {
    TimerHandleObject* t = s.timers.pop();
    if (t->iteration == s.iteration) {
      not_due.push_back(t);
      continue;
    }
    timer_set_scheduled(t, false);
    s.polled.push_back(&t->base);  // the heap's reference moves to the queue
  }
  for (TimerHandleObject* t : not_due) s.timers.push(t->when, t);
  return run_handles(self, s.polled, s.polled.size());
}

}  // namespace pyloop::py
