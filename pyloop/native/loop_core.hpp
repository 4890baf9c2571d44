// LoopCore: the native base of pyloop.Loop. It owns the ready queue, the timer
// heap and the parker, and implements the per-callback entry points
// (call_soon, call_later, call_at, call_soon_threadsafe, time) and one loop
// iteration. pyloop.Loop adds the rest of asyncio's surface in Python.
//
// Threading: a loop belongs to the thread running it. call_soon_threadsafe
// and _write_to_self are safe from any thread; `closed` is read there through
// an atomic. Everything else is the loop thread's.
#pragma once

#include <Python.h>

#include "pyloop/rt/inbox.hpp"

namespace pyloop::py {

struct LoopState;
struct StreamLink;

struct LoopCoreObject {
  PyObject_HEAD
  LoopState* state;
  PyObject* thread_id;       // asyncio's _thread_id: None, or the running thread's id
  PyObject* current_handle;  // asyncio's _current_handle (debug mode)
  PyObject* task_factory;    // asyncio's _task_factory: None or a callable
  double clock_resolution;
  bool closed;    // touched only through std::atomic_ref: other threads read it
  bool stopping;
  bool debug;
};

extern PyTypeObject LoopCoreType;

int register_loop_core(PyObject* module);

// Raises asyncio's RuntimeError("Event loop is closed") when it is; returns -1 then.
int check_closed(const LoopCoreObject* self);

// Whether close() has run; safe from any thread.
bool closed_now(const LoopCoreObject* self);

// For handles, whose `loop` is always a LoopCore.
bool loop_debug(PyObject* loop) noexcept;
void loop_timer_cancelled(PyObject* loop) noexcept;

// create_task(coro, *, name=None, context=None, **kwargs), in create_task.cpp.
PyObject* loop_create_task(LoopCoreObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames);
int init_create_task();

// get_debug(), is_running(), is_closed(), create_future(), in loop_queries.cpp.
PyObject* loop_get_debug(LoopCoreObject* self, PyObject* unused);
PyObject* loop_is_running(LoopCoreObject* self, PyObject* unused);
PyObject* loop_is_closed(LoopCoreObject* self, PyObject* unused);
PyObject* loop_create_future(LoopCoreObject* self, PyObject* unused);
int init_loop_queries();

// add_reader/add_writer's native halves, in fd_watch.cpp: _watch_reader(fd,
// callback, *args) -> Handle, _unwatch_reader(fd) -> bool, and the same for
// writers. fd is an int; pyloop's _add_reader & co. convert file objects.
PyObject* loop_add_reader(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs);
PyObject* loop_add_writer(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs);
PyObject* loop_remove_reader(LoopCoreObject* self, PyObject* fd);
PyObject* loop_remove_writer(LoopCoreObject* self, PyObject* fd);
// _watchers_of(fd) -> None, or (reader handle or None, writer handle or None).
PyObject* loop_watchers_of(LoopCoreObject* self, PyObject* fd);
// Makes the loop's registration of fd match `interest` (and an I/O
// thread's, for a stream it shares); rewatch_fd: match its watchers'.
// Returns 0 or an errno value.
int watch_fd(LoopState& s, int fd, std::uint32_t interest);
void rewatch_fd(LoopState& s, int fd);
// A stream's I/O thread registration, which watch_fd leaves for after the
// loop's next poll: made now (it is made once only), or, after a poll that
// found `count` fds ready, for each stream the poll did not report.
void rearm_now(LoopState& s, StreamLink& link);
void rearm_after_poll(LoopState& s, int count);
// Hands the loop's streams to the I/O threads or takes them back, as its
// OffloadPolicy says after this iteration (offload.cpp).
void steer_offload(LoopState& s);
// _wake_stats() -> dict: the loop's wake-ups and offloading (offload.cpp).
PyObject* loop_wake_stats(LoopCoreObject* self, PyObject* unused);
// Queues the callbacks of the fds park() reported ready.
void dispatch_ready_fds(LoopCoreObject* self, int count);
// Drops every watcher: close().
void clear_watchers(LoopCoreObject* self);

// getaddrinfo and getnameinfo off the loop thread, in resolve.cpp:
// _resolve(host: bytes|None, port: bytes|None, family, type, proto, flags)
// -> Future of [(family, type, proto, canonname, sockaddr), ...].
PyObject* loop_resolve(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs);
// _name_info(host, port, flowinfo, scope_id, ipv4_form, flags) -> Future of (host, service).
PyObject* loop_name_info(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs);
// Settles the futures of the native results in the inbox. -1: error set.
int deliver_completions(LoopCoreObject* self);
// Settles the future waiting for a resolver completion (resolve.cpp).
int settle_completion(LoopCoreObject* self, rt::CompletionPtr c);
// Drops the futures still waiting: close().
void clear_pending(LoopCoreObject* self);

// One iteration: asyncio's BaseEventLoop._run_once, with the poll placed as
// run_loop.cpp explains. Returns -1 with an exception set when a callback
// raised SystemExit or KeyboardInterrupt, or a signal handler raised while
// the loop was parked.
int run_once(LoopCoreObject* self);

}  // namespace pyloop::py
