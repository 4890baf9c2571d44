// Handle and TimerHandle: a scheduled callback, as asyncio.Handle and
// asyncio.TimerHandle, implemented natively because one is made and run for
// every call_soon, every task step and every future callback.
//
// Threading: made by the loop thread or, through call_soon_threadsafe, by any
// thread; run and popped only by the loop thread. cancel() may come from any
// thread, so the cancelled/scheduled flags are atomics and the callback and
// arguments are read and cleared under the handle's critical section (a no-op
// on the GIL build, a per-object mutex on the free-threaded one). A handle
// made by call_soon_threadsafe is asyncio's _ThreadSafeHandle too: cancel()
// from another thread while its callback runs waits for the callback to
// finish (the loop thread itself, cancelling from inside it, does not wait).
#pragma once

#include <Python.h>

#include <atomic>
#include <cstdint>

namespace pyloop::py {

struct HandleObject {
  PyObject_HEAD
  PyObject* callback;          // nullptr once cancelled
  PyObject* args;              // a tuple; nullptr once cancelled
  PyObject* context;           // the contextvars.Context the callback runs in
  PyObject* loop;              // the owning loop (strong)
  PyObject* source_traceback;  // a list in debug mode, else nullptr
  PyObject* repr;              // repr saved at cancel() in debug mode
  PyObject* weakreflist;
  bool cancelled;              // touched only through std::atomic_ref
  std::uint8_t sync;           // HandleSync bits; touched only through std::atomic_ref once shared
};

// HandleObject::sync: whether cancel() waits for a running callback.
enum HandleSync : std::uint8_t {
  handle_threadsafe = 1,  // made by call_soon_threadsafe
  handle_running = 2,     // its callback is running on the loop thread
  handle_waited = 4,      // a cancel() from another thread waits for it to finish
};

struct TimerHandleObject {
  HandleObject base;
  double when;
  bool scheduled;  // in the loop's timer heap; touched only through std::atomic_ref
  // LoopState::iteration when it was scheduled: a timer that an iteration's
  // queued callbacks scheduled is not due in that iteration (run_loop.cpp).
  std::uint64_t iteration;
};

extern PyTypeObject HandleType;
extern PyTypeObject TimerHandleType;

// Registers Handle and TimerHandle on the module. Returns -1 with an exception set.
int register_handle_types(PyObject* module);

// Builds a handle for callback(*args) in context (nullptr: a copy of the
// current context). Returns a new reference or nullptr with an exception set.
HandleObject* handle_new(PyTypeObject* type, PyObject* loop, PyObject* callback,
                         PyObject* const* args, Py_ssize_t nargs, PyObject* context,
                         bool debug);

// Runs the callback unless cancelled. Errors go to the loop's exception
// handler, as asyncio's Handle._run does; returns -1 only for SystemExit and
// KeyboardInterrupt (and failures of the handler itself), which propagate.
int handle_run(HandleObject* handle);

// handle.cancel(), for native callers. Returns -1 with an exception set.
int handle_cancel(HandleObject* handle);

inline bool handle_cancelled(HandleObject* h) noexcept {
  // Relaxed: a cancel racing with the run may or may not win, as in asyncio;
  // handle_run re-checks under the critical section before calling.
  return std::atomic_ref<bool>(h->cancelled).load(std::memory_order_relaxed);
}

inline bool timer_scheduled(TimerHandleObject* t) noexcept {
  return std::atomic_ref<bool>(t->scheduled).load(std::memory_order_relaxed);
}

inline void timer_set_scheduled(TimerHandleObject* t, bool value) noexcept {
  std::atomic_ref<bool>(t->scheduled).store(value, std::memory_order_relaxed);
}

}  // namespace pyloop::py
