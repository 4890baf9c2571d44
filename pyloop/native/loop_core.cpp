#include "loop_core.hpp"

#include <cstddef>
#include <new>
#include <system_error>
#include <vector>

#include "handle.hpp"
#include "loop_state.hpp"
#include "transport_core.hpp"
#include "pyloop/rt/io_thread.hpp"
#include "pyloop/rt/clock.hpp"

namespace pyloop::py {

namespace {

bool is_closed(const LoopCoreObject* self) {
  // Relaxed: close() and a racing call_soon_threadsafe are unordered in
  // asyncio too; a handle that slips in is released when the loop is freed.
  return std::atomic_ref<bool>(const_cast<LoopCoreObject*>(self)->closed).load(std::memory_order_relaxed);
}

}  // namespace

bool closed_now(const LoopCoreObject* self) { return is_closed(self); }

int check_closed(const LoopCoreObject* self) {
  if (!is_closed(self)) return 0;
  PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
  return -1;
}

namespace {

// "context", interned: keyword names are nearly always interned strings, so
// the common case is a pointer comparison. Made once at module import.
PyObject* context_str = nullptr;

// Parses the only keyword these methods take, `context`.
int parse_context(const char* method, PyObject* const* kwvalues, PyObject* kwnames, PyObject** context) {
  *context = nullptr;
  if (!kwnames) return 0;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    if (key != context_str && PyUnicode_Compare(key, context_str) != 0) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", method, key);
      return -1;
    }
    *context = kwvalues[i];
  }
  return 0;
}

// Debug mode only: asyncio's thread and callback checks, done by the Python
// methods pyloop.Loop inherits from asyncio so their errors match exactly.
int debug_checks(LoopCoreObject* self, PyObject* callback, const char* method, bool check_thread) {
  auto* me = reinterpret_cast<PyObject*>(self);
  if (check_thread) {
    PyObject* r = PyObject_CallMethod(me, "_check_thread", nullptr);
    if (!r) return -1;
    Py_DECREF(r);
  }
  PyObject* r = PyObject_CallMethod(me, "_check_callback", "Os", callback, method);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

PyObject* loop_call_soon(LoopCoreObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  PyObject* context;
  if (parse_context("call_soon", args + nargs, kwnames, &context) < 0) return nullptr;
  if (nargs < 1) {
    PyErr_SetString(PyExc_TypeError, "call_soon() missing 1 required positional argument: 'callback'");
    return nullptr;
  }
  if (check_closed(self) < 0) return nullptr;
  if (self->debug && debug_checks(self, args[0], "call_soon", true) < 0) return nullptr;
  HandleObject* h = handle_new(&HandleType, reinterpret_cast<PyObject*>(self), args[0], args + 1, nargs - 1,
                               context, self->debug);
  if (!h) return nullptr;
  LoopState& s = *self->state;
  // Callbacks sent from other threads before this one go first, as they do in
  // asyncio, where call_soon_threadsafe appends straight to the ready queue.
  if (!s.remote.empty()) s.drain_remote();
  s.ready.push_back(reinterpret_cast<HandleObject*>(Py_NewRef(h)));
  return reinterpret_cast<PyObject*>(h);
}

PyObject* schedule_timer(LoopCoreObject* self, double when, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* context) {
  if (check_closed(self) < 0) return nullptr;
  if (self->debug && debug_checks(self, args[0], "call_at", true) < 0) return nullptr;
  HandleObject* h = handle_new(&TimerHandleType, reinterpret_cast<PyObject*>(self), args[0], args + 1,
                               nargs - 1, context, self->debug);
  if (!h) return nullptr;
  auto* timer = reinterpret_cast<TimerHandleObject*>(h);
  timer->when = when;
  timer->iteration = self->state->iteration;
  timer_set_scheduled(timer, true);
  self->state->timers.push(when, reinterpret_cast<TimerHandleObject*>(Py_NewRef(h)));
  return reinterpret_cast<PyObject*>(h);
}

PyObject* loop_call_at(LoopCoreObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  PyObject* context;
  if (parse_context("call_at", args + nargs, kwnames, &context) < 0) return nullptr;
  if (nargs < 2) {
    PyErr_SetString(PyExc_TypeError, nargs == 0
                                         ? "call_at() missing 2 required positional arguments: 'when' and 'callback'"
                                         : "call_at() missing 1 required positional argument: 'callback'");
    return nullptr;
  }
  if (args[0] == Py_None) {
    PyErr_SetString(PyExc_TypeError, "when cannot be None");
    return nullptr;
  }
  double when = PyFloat_AsDouble(args[0]);
  if (when == -1.0 && PyErr_Occurred()) return nullptr;
  return schedule_timer(self, when, args + 1, nargs - 1, context);
}

PyObject* loop_call_later(LoopCoreObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  PyObject* context;
  if (parse_context("call_later", args + nargs, kwnames, &context) < 0) return nullptr;
  if (nargs < 2) {
    PyErr_SetString(PyExc_TypeError,
                    nargs == 0 ? "call_later() missing 2 required positional arguments: 'delay' and 'callback'"
                               : "call_later() missing 1 required positional argument: 'callback'");
    return nullptr;
  }
  PyObject* delay = args[0];
  if (delay == Py_None) {
    PyErr_SetString(PyExc_TypeError, "delay must not be None");
    return nullptr;
  }
  double now = rt::monotonic_seconds();
  double when;
  if (PyFloat_CheckExact(delay) || PyLong_CheckExact(delay)) {
    double d = PyFloat_AsDouble(delay);
    if (d == -1.0 && PyErr_Occurred()) return nullptr;
    when = now + d;
  } else {
    // asyncio computes self.time() + delay; going through the number protocol
    // keeps its behaviour (and its TypeError) for any other delay type.
    PyObject* t = PyFloat_FromDouble(now);
    if (!t) return nullptr;
    PyObject* sum = PyNumber_Add(t, delay);
    Py_DECREF(t);
    if (!sum) return nullptr;
    when = PyFloat_AsDouble(sum);
    Py_DECREF(sum);
    if (when == -1.0 && PyErr_Occurred()) return nullptr;
  }
  return schedule_timer(self, when, args + 1, nargs - 1, context);
}

PyObject* loop_call_soon_threadsafe(LoopCoreObject* self, PyObject* const* args, size_t nargsf,
                                   PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  PyObject* context;
  if (parse_context("call_soon_threadsafe", args + nargs, kwnames, &context) < 0) return nullptr;
  if (nargs < 1) {
    PyErr_SetString(PyExc_TypeError,
                    "call_soon_threadsafe() missing 1 required positional argument: 'callback'");
    return nullptr;
  }
  if (check_closed(self) < 0) return nullptr;
  // Reading `debug` from another thread is racy in asyncio too; it only
  // selects extra checks.
  bool debug = std::atomic_ref<bool>(self->debug).load(std::memory_order_relaxed);
  if (debug && debug_checks(self, args[0], "call_soon_threadsafe", false) < 0) return nullptr;
  HandleObject* h = handle_new(&HandleType, reinterpret_cast<PyObject*>(self), args[0], args + 1, nargs - 1,
                               context, debug);
  if (!h) return nullptr;
  h->sync = handle_threadsafe;  // before the loop thread can see it
  if (!self->state->remote.push(reinterpret_cast<HandleObject*>(Py_NewRef(h)))) {
    Py_DECREF(h);
    Py_DECREF(h);
    return PyErr_NoMemory();
  }
  return reinterpret_cast<PyObject*>(h);
}

PyObject* loop_time(LoopCoreObject*, PyObject*) { return PyFloat_FromDouble(rt::monotonic_seconds()); }

PyObject* loop_write_to_self(LoopCoreObject* self, PyObject*) {
  self->state->parker.unpark();
  Py_RETURN_NONE;
}

// asyncio's TimerHandle.cancel() calls this; pyloop's own handles count
// themselves (handle.cpp), so this serves only callers of the private API.
PyObject* loop_timer_handle_cancelled(LoopCoreObject* self, PyObject* handle) {
  if (Py_IS_TYPE(handle, &TimerHandleType) && timer_scheduled(reinterpret_cast<TimerHandleObject*>(handle)))
    loop_timer_cancelled(reinterpret_cast<PyObject*>(self));
  Py_RETURN_NONE;
}

PyObject* loop_run_once(LoopCoreObject* self, PyObject*) {
  if (run_once(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

// asyncio's `while True: self._run_once(); if self._stopping: break`.
PyObject* loop_run_until_stopped(LoopCoreObject* self, PyObject*) {
  for (;;) {
    if (run_once(self) < 0) return nullptr;
    if (self->stopping) break;
  }
  Py_RETURN_NONE;
}

// Drops every scheduled callback: close(). The queues are emptied before any
// handle is released, since releasing one can run arbitrary Python code.
void clear_callbacks(LoopState& s) {
  s.drain_remote();
  rt::RingQueue<HandleObject*> ready;
  while (!s.polled.empty()) ready.push_back(s.polled.pop_front());
  while (!s.ready.empty()) ready.push_back(s.ready.pop_front());
  std::vector<TimerHandleObject*> timers;
  s.timers.clear([&](TimerHandleObject* t) { timers.push_back(t); });
  s.timer_cancelled_count.store(0, std::memory_order_relaxed);
  while (!ready.empty()) Py_DECREF(ready.pop_front());
  for (TimerHandleObject* t : timers) {
    timer_set_scheduled(t, false);
    Py_DECREF(t);
  }
}

PyObject* loop_clear_callbacks(LoopCoreObject* self, PyObject*) {
  clear_callbacks(*self->state);
  clear_watchers(self);
  clear_pending(self);
  // No call's outcome lands in the inbox after this; those there go with it.
  self->state->calls->close();
  take_back_loans(*self->state);
  // The loop's epoll fd and eventfd go with close(), as asyncio's selector
  // and self-pipe do, not with the last holder of its inbox.
  self->state->parker.release();
  Py_RETURN_NONE;
}

PyObject* loop_scheduled_list(LoopCoreObject* self, PyObject*) {
  PyObject* list = PyList_New(0);
  if (!list) return nullptr;
  bool ok = true;
  self->state->timers.for_each([&](const auto& e) {
    if (ok && PyList_Append(list, reinterpret_cast<PyObject*>(e.payload)) < 0) ok = false;
  });
  if (!ok) Py_CLEAR(list);
  return list;
}

// --- attributes asyncio.BaseEventLoop's Python code reads and writes ----------

// Flags: atomics, since other threads read `closed` and `debug`.
template <bool LoopCoreObject::*Field>
PyObject* get_flag(LoopCoreObject* self, void*) {
  return PyBool_FromLong(std::atomic_ref<bool>(self->*Field).load(std::memory_order_relaxed));
}
template <bool LoopCoreObject::*Field>
int set_flag(LoopCoreObject* self, PyObject* value, void*) {
  int b = value ? PyObject_IsTrue(value) : 0;
  if (b < 0) return -1;
  std::atomic_ref<bool>(self->*Field).store(b, std::memory_order_relaxed);
  return 0;
}

// Object fields; deleting one stores None, as assigning None would.
template <PyObject* LoopCoreObject::*Field>
PyObject* get_object(LoopCoreObject* self, void*) {
  return Py_NewRef(self->*Field);
}
template <PyObject* LoopCoreObject::*Field>
int set_object(LoopCoreObject* self, PyObject* value, void*) {
  Py_XSETREF(self->*Field, Py_NewRef(value ? value : Py_None));
  return 0;
}
PyObject* get_clock_resolution(LoopCoreObject* self, void*) { return PyFloat_FromDouble(self->clock_resolution); }
int set_clock_resolution(LoopCoreObject* self, PyObject* value, void*) {
  double d = value ? PyFloat_AsDouble(value) : 0.0;
  if (d == -1.0 && PyErr_Occurred()) return -1;
  self->clock_resolution = d;
  return 0;
}
PyObject* get_timer_cancelled_count(LoopCoreObject* self, void*) {
  return PyLong_FromSize_t(self->state->timer_cancelled_count.load(std::memory_order_relaxed));
}
int set_timer_cancelled_count(LoopCoreObject* self, PyObject* value, void*) {
  std::size_t n = value ? PyLong_AsSize_t(value) : 0;
  if (n == static_cast<std::size_t>(-1) && PyErr_Occurred()) return -1;
  self->state->timer_cancelled_count.store(n, std::memory_order_relaxed);
  return 0;
}

// --- object lifecycle -------------------------------------------------------

PyObject* loop_new(PyTypeObject* type, PyObject*, PyObject*) {
  auto* self = reinterpret_cast<LoopCoreObject*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  try {
    self->state = new LoopState();
    // The process's I/O threads start with its first loop rather than its
    // first connection, so their fds are there from the start.
    rt::IoThreads::shared();
  } catch (const std::system_error& e) {
    Py_DECREF(self);
    errno = e.code().value();
    return PyErr_SetFromErrno(PyExc_OSError);
  } catch (const std::bad_alloc&) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  self->thread_id = Py_NewRef(Py_None);
  self->current_handle = Py_NewRef(Py_None);
  self->task_factory = Py_NewRef(Py_None);
  self->clock_resolution = 1e-9;
  self->closed = false;
  self->stopping = false;
  self->debug = false;
  return reinterpret_cast<PyObject*>(self);
}

int loop_traverse(LoopCoreObject* self, visitproc visit, void* arg) {
  // No Py_VISIT(Py_TYPE(self)): the type is static, and a Python subclass's
  // own traverse already visits its heap type.
  Py_VISIT(self->thread_id);
  Py_VISIT(self->current_handle);
  Py_VISIT(self->task_factory);
  if (!self->state) return 0;
  int err = 0;
  for (const auto* queue : {&self->state->polled, &self->state->ready}) {
    queue->for_each([&](HandleObject* h) {
      if (!err) err = visit(reinterpret_cast<PyObject*>(h), arg);
    });
  }
  self->state->timers.for_each([&](const auto& e) {
    if (!err) err = visit(reinterpret_cast<PyObject*>(e.payload), arg);
  });
  for (const auto& [id, future] : self->state->pending) {
    if (!err) err = visit(future, arg);
  }
  for (const auto& [fd, w] : self->state->watchers) {
    if (!err && w.reader) err = visit(reinterpret_cast<PyObject*>(w.reader), arg);
    if (!err && w.writer) err = visit(reinterpret_cast<PyObject*>(w.writer), arg);
  }
  return err;
}

int loop_clear(LoopCoreObject* self) {
  if (self->state) {
    clear_callbacks(*self->state);
    clear_watchers(self);
    clear_pending(self);
  }
  Py_CLEAR(self->thread_id);
  Py_CLEAR(self->current_handle);
  Py_CLEAR(self->task_factory);
  return 0;
}

void loop_dealloc(LoopCoreObject* self) {
  PyObject_GC_UnTrack(self);
  loop_clear(self);
  if (self->state) {
    self->state->calls->close();
    take_back_loans(*self->state);
  }
  delete self->state;
  self->state = nullptr;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(reinterpret_cast<PyObject*>(self));
}

#define FASTCALL_KW(fn) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn))
PyMethodDef loop_methods[] = {
    {"call_soon", FASTCALL_KW(loop_call_soon), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"call_later", FASTCALL_KW(loop_call_later), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"call_at", FASTCALL_KW(loop_call_at), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"call_soon_threadsafe", FASTCALL_KW(loop_call_soon_threadsafe), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"create_task", FASTCALL_KW(loop_create_task), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"time", reinterpret_cast<PyCFunction>(loop_time), METH_NOARGS, nullptr},
    {"get_debug", reinterpret_cast<PyCFunction>(loop_get_debug), METH_NOARGS, nullptr},
    {"is_running", reinterpret_cast<PyCFunction>(loop_is_running), METH_NOARGS, nullptr},
    {"is_closed", reinterpret_cast<PyCFunction>(loop_is_closed), METH_NOARGS, nullptr},
    {"create_future", reinterpret_cast<PyCFunction>(loop_create_future), METH_NOARGS, nullptr},
    {"_write_to_self", reinterpret_cast<PyCFunction>(loop_write_to_self), METH_NOARGS, nullptr},
    {"_timer_handle_cancelled", reinterpret_cast<PyCFunction>(loop_timer_handle_cancelled), METH_O, nullptr},
    {"_run_once", reinterpret_cast<PyCFunction>(loop_run_once), METH_NOARGS, nullptr},
    {"_run_until_stopped", reinterpret_cast<PyCFunction>(loop_run_until_stopped), METH_NOARGS, nullptr},
    {"_watch_reader", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_add_reader)), METH_FASTCALL,
     nullptr},
    {"_watch_writer", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_add_writer)), METH_FASTCALL,
     nullptr},
    {"_unwatch_reader", reinterpret_cast<PyCFunction>(loop_remove_reader), METH_O, nullptr},
    {"_unwatch_writer", reinterpret_cast<PyCFunction>(loop_remove_writer), METH_O, nullptr},
    {"_watchers_of", reinterpret_cast<PyCFunction>(loop_watchers_of), METH_O, nullptr},
    {"_resolve", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_resolve)), METH_FASTCALL, nullptr},
    {"_name_info", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_name_info)), METH_FASTCALL,
     nullptr},
    {"_run_in_pool", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_run_in_pool)), METH_FASTCALL,
     nullptr},
    {"_clear_callbacks", reinterpret_cast<PyCFunction>(loop_clear_callbacks), METH_NOARGS, nullptr},
    {"_scheduled_handles", reinterpret_cast<PyCFunction>(loop_scheduled_list), METH_NOARGS, nullptr},
    {"_wake_stats", reinterpret_cast<PyCFunction>(loop_wake_stats), METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};
#undef FASTCALL_KW

#define GETSET(name, g, s) {name, reinterpret_cast<getter>(g), reinterpret_cast<setter>(s), nullptr, nullptr}
PyGetSetDef loop_getset[] = {
    GETSET("_closed", get_flag<&LoopCoreObject::closed>, set_flag<&LoopCoreObject::closed>),
    GETSET("_stopping", get_flag<&LoopCoreObject::stopping>, set_flag<&LoopCoreObject::stopping>),
    GETSET("_debug", get_flag<&LoopCoreObject::debug>, set_flag<&LoopCoreObject::debug>),
    GETSET("_thread_id", get_object<&LoopCoreObject::thread_id>, set_object<&LoopCoreObject::thread_id>),
    GETSET("_current_handle", get_object<&LoopCoreObject::current_handle>,
           set_object<&LoopCoreObject::current_handle>),
    GETSET("_task_factory", get_object<&LoopCoreObject::task_factory>, set_object<&LoopCoreObject::task_factory>),
    GETSET("_clock_resolution", get_clock_resolution, set_clock_resolution),
    GETSET("_timer_cancelled_count", get_timer_cancelled_count, set_timer_cancelled_count),
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
#undef GETSET

}  // namespace

PyTypeObject LoopCoreType = {.ob_base = PyVarObject_HEAD_INIT(nullptr, 0).tp_name = "pyloop._native.LoopCore"};

bool loop_debug(PyObject* loop) noexcept {
  auto* self = reinterpret_cast<LoopCoreObject*>(loop);
  return std::atomic_ref<bool>(self->debug).load(std::memory_order_relaxed);
}

void loop_timer_cancelled(PyObject* loop) noexcept {
  reinterpret_cast<LoopCoreObject*>(loop)->state->timer_cancelled_count.fetch_add(1, std::memory_order_relaxed);
}

int register_loop_core(PyObject* module) {
  context_str = PyUnicode_InternFromString("context");
  if (!context_str || init_create_task() < 0 || init_loop_queries() < 0) return -1;
  LoopCoreType.tp_basicsize = sizeof(LoopCoreObject);
  LoopCoreType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  LoopCoreType.tp_doc = "Native core of pyloop.Loop: ready queue, timers, parking.";
  LoopCoreType.tp_new = loop_new;
  LoopCoreType.tp_dealloc = reinterpret_cast<destructor>(loop_dealloc);
  LoopCoreType.tp_traverse = reinterpret_cast<traverseproc>(loop_traverse);
  LoopCoreType.tp_clear = reinterpret_cast<inquiry>(loop_clear);
  LoopCoreType.tp_methods = loop_methods;
  LoopCoreType.tp_getset = loop_getset;
  LoopCoreType.tp_free = PyObject_GC_Del;
  if (PyType_Ready(&LoopCoreType) < 0) return -1;
  return PyModule_AddObjectRef(module, "LoopCore", reinterpret_cast<PyObject*>(&LoopCoreType));
}

}  // namespace pyloop::py
