#include "handle.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "loop_core.hpp"
#include "python_helpers.hpp"

namespace pyloop::py {

namespace {

bool is_timer(const HandleObject* h) { return Py_IS_TYPE(h, &TimerHandleType); }

TimerHandleObject* as_timer(HandleObject* h) {
  // Only called after is_timer(): TimerHandleObject starts with a HandleObject.
  return reinterpret_cast<TimerHandleObject*>(h);
}

int handle_traverse(HandleObject* self, visitproc visit, void* arg) {
  Py_VISIT(self->callback);
  Py_VISIT(self->args);
  Py_VISIT(self->context);
  Py_VISIT(self->loop);
  Py_VISIT(self->source_traceback);
  Py_VISIT(self->repr);
  return 0;
}

int handle_clear(HandleObject* self) {
  Py_CLEAR(self->callback);
  Py_CLEAR(self->args);
  Py_CLEAR(self->context);
  Py_CLEAR(self->loop);
  Py_CLEAR(self->source_traceback);
  Py_CLEAR(self->repr);
  return 0;
}

void handle_dealloc(HandleObject* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  handle_clear(self);
  Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

PyObject* handle_repr(HandleObject* self) {
  if (self->repr) return Py_NewRef(self->repr);
  return PyObject_CallOneArg(helpers.handle_repr, reinterpret_cast<PyObject*>(self));
}

namespace {

// The threadsafe handles whose callbacks this thread is running (innermost
// last): cancelling one of them from inside must not wait for itself.
thread_local std::vector<HandleObject*> running_here;

std::atomic_ref<std::uint8_t> sync_of(HandleObject* h) { return std::atomic_ref<std::uint8_t>(h->sync); }

// Relaxed: the threadsafe bit is set before the handle is shared and never
// changes, so any load sees it; the load is atomic all the same because the
// other bits of the byte change under it, on other threads.
bool is_threadsafe(HandleObject* h) { return sync_of(h).load(std::memory_order_relaxed) & handle_threadsafe; }

// Whether cancel() must wait for h's callback: it is running, on another
// thread than this one.
bool runs_elsewhere(HandleObject* h) {
  return (sync_of(h).load(std::memory_order_acquire) & handle_running) &&
         std::ranges::find(running_here, h) == running_here.end();
}

// asyncio's _ThreadSafeHandle.cancel() takes the lock its _run holds: a
// cancel from another thread waits until a running callback has returned.
void wait_until_not_running(HandleObject* h) {
  auto sync = sync_of(h);
  Py_BEGIN_ALLOW_THREADS;
  std::uint8_t seen = sync.load(std::memory_order_acquire);
  while (seen & handle_running) {
    if (!(seen & handle_waited) &&
        !sync.compare_exchange_weak(seen, seen | handle_waited, std::memory_order_acq_rel))
      continue;
    sync.wait(seen | handle_waited, std::memory_order_acquire);
    seen = sync.load(std::memory_order_acquire);
  }
  Py_END_ALLOW_THREADS;
}

// Marks a threadsafe handle's callback as running; called in the critical
// section that decided it runs.
void begin_running(HandleObject* h) {
  sync_of(h).fetch_or(handle_running, std::memory_order_acq_rel);
  running_here.push_back(h);
}

void end_running(HandleObject* h) {
  running_here.pop_back();
  std::uint8_t before = sync_of(h).exchange(handle_threadsafe, std::memory_order_acq_rel);
  if (before & handle_waited) sync_of(h).notify_all();
}

}  // namespace

PyObject* handle_cancel_method(HandleObject* self, PyObject*) {
  PyObject* callback = nullptr;
  PyObject* args = nullptr;
  bool count_timer = false;
  bool wait = false;
  int err = 0;
  bool threadsafe = is_threadsafe(self);
  do {
    if (wait) wait_until_not_running(self);
    Py_BEGIN_CRITICAL_SECTION(self);
    // Checked in the critical section handle_run starts the callback in.
    wait = threadsafe && runs_elsewhere(self);
    if (!wait && !self->cancelled) {
      count_timer = is_timer(self) && timer_scheduled(as_timer(self));
      std::atomic_ref<bool>(self->cancelled).store(true, std::memory_order_relaxed);
      if (self->loop && loop_debug(self->loop)) {
        // Keep the description: the callback it names is dropped just below.
        self->repr = PyObject_CallOneArg(helpers.handle_repr, reinterpret_cast<PyObject*>(self));
        if (!self->repr) err = -1;
      }
      callback = self->callback;
      args = self->args;
      self->callback = nullptr;
      self->args = nullptr;
    }
    Py_END_CRITICAL_SECTION();
  } while (wait);
  if (count_timer) loop_timer_cancelled(self->loop);
  Py_XDECREF(callback);
  Py_XDECREF(args);
  if (err) return nullptr;
  Py_RETURN_NONE;
}

PyObject* handle_cancelled_method(HandleObject* self, PyObject*) {
  // As asyncio's _ThreadSafeHandle.cancelled(), which takes its lock too.
  if (is_threadsafe(self) && runs_elsewhere(self)) wait_until_not_running(self);
  return PyBool_FromLong(handle_cancelled(self));
}

PyObject* handle_get_context(HandleObject* self, PyObject*) {
  return Py_NewRef(self->context ? self->context : Py_None);
}

PyObject* handle_run_method(HandleObject* self, PyObject*) {
  if (handle_run(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* or_none(PyObject* o) { return Py_NewRef(o ? o : Py_None); }

PyObject* get_callback(HandleObject* self, void*) {
  PyObject* r;
  Py_BEGIN_CRITICAL_SECTION(self);
  r = or_none(self->callback);
  Py_END_CRITICAL_SECTION();
  return r;
}
PyObject* get_args(HandleObject* self, void*) {
  PyObject* r;
  Py_BEGIN_CRITICAL_SECTION(self);
  r = or_none(self->args);
  Py_END_CRITICAL_SECTION();
  return r;
}
PyObject* get_cancelled(HandleObject* self, void*) { return PyBool_FromLong(handle_cancelled(self)); }
PyObject* get_loop(HandleObject* self, void*) { return or_none(self->loop); }
PyObject* get_context(HandleObject* self, void*) { return or_none(self->context); }
PyObject* get_source_traceback(HandleObject* self, void*) { return or_none(self->source_traceback); }
PyObject* get_repr(HandleObject* self, void*) { return or_none(self->repr); }

PyObject* timer_when(HandleObject* self, PyObject*) { return PyFloat_FromDouble(as_timer(self)->when); }
PyObject* get_when(HandleObject* self, void*) { return PyFloat_FromDouble(as_timer(self)->when); }
PyObject* get_scheduled(HandleObject* self, void*) { return PyBool_FromLong(timer_scheduled(as_timer(self))); }

Py_hash_t timer_hash(HandleObject* self) {
  PyObject* when = PyFloat_FromDouble(as_timer(self)->when);
  if (!when) return -1;
  Py_hash_t h = PyObject_Hash(when);
  Py_DECREF(when);
  return h;
}

// asyncio.TimerHandle's comparisons: order by deadline; equal when deadline,
// callback, arguments and cancelled state all match.
int timer_equal(HandleObject* a, HandleObject* b) {
  if (a == b) return 1;
  if (as_timer(a)->when != as_timer(b)->when || handle_cancelled(a) != handle_cancelled(b)) return 0;
  PyObject* none = Py_None;
  int eq = PyObject_RichCompareBool(a->callback ? a->callback : none, b->callback ? b->callback : none, Py_EQ);
  if (eq != 1) return eq;
  return PyObject_RichCompareBool(a->args ? a->args : none, b->args ? b->args : none, Py_EQ);
}

PyObject* timer_richcompare(HandleObject* self, PyObject* other, int op) {
  if (!Py_IS_TYPE(other, &TimerHandleType)) Py_RETURN_NOTIMPLEMENTED;
  auto* o = reinterpret_cast<HandleObject*>(other);
  double a = as_timer(self)->when;
  double b = as_timer(o)->when;
  int eq;
  switch (op) {
    case Py_LT: return PyBool_FromLong(a < b);
    case Py_GT: return PyBool_FromLong(a > b);
    case Py_LE:
    case Py_GE:
      if (op == Py_LE ? a < b : a > b) Py_RETURN_TRUE;
      [[fallthrough]];
    case Py_EQ:
    case Py_NE:
      eq = timer_equal(self, o);
      if (eq < 0) return nullptr;
      return PyBool_FromLong(op == Py_NE ? !eq : eq);
  }
  Py_RETURN_NOTIMPLEMENTED;
}

PyMethodDef handle_methods[] = {
    {"cancel", reinterpret_cast<PyCFunction>(handle_cancel_method), METH_NOARGS, nullptr},
    {"cancelled", reinterpret_cast<PyCFunction>(handle_cancelled_method), METH_NOARGS, nullptr},
    {"get_context", reinterpret_cast<PyCFunction>(handle_get_context), METH_NOARGS, nullptr},
    {"_run", reinterpret_cast<PyCFunction>(handle_run_method), METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyMethodDef timer_methods[] = {
    {"when", reinterpret_cast<PyCFunction>(timer_when), METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

#define GETTER(name, fn) {name, reinterpret_cast<getter>(fn), nullptr, nullptr, nullptr}
PyGetSetDef handle_getset[] = {
    GETTER("_callback", get_callback),
    GETTER("_args", get_args),
    GETTER("_cancelled", get_cancelled),
    GETTER("_loop", get_loop),
    GETTER("_context", get_context),
    GETTER("_source_traceback", get_source_traceback),
    GETTER("_repr", get_repr),
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
PyGetSetDef timer_getset[] = {
    GETTER("_when", get_when),
    GETTER("_scheduled", get_scheduled),
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
#undef GETTER

}  // namespace

PyTypeObject HandleType = {.ob_base = PyVarObject_HEAD_INIT(nullptr, 0).tp_name = "pyloop._native.Handle"};
PyTypeObject TimerHandleType = {.ob_base = PyVarObject_HEAD_INIT(nullptr, 0).tp_name = "pyloop._native.TimerHandle"};

int register_handle_types(PyObject* module) {
  // Static types: a heap type would add a type refcount per instance, shared by
  // every thread that makes handles.
  HandleType.tp_basicsize = sizeof(HandleObject);
  HandleType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  HandleType.tp_doc = "A callback scheduled on a pyloop loop (asyncio.Handle's interface).";
  HandleType.tp_dealloc = reinterpret_cast<destructor>(handle_dealloc);
  HandleType.tp_traverse = reinterpret_cast<traverseproc>(handle_traverse);
  HandleType.tp_clear = reinterpret_cast<inquiry>(handle_clear);
  HandleType.tp_repr = reinterpret_cast<reprfunc>(handle_repr);
  HandleType.tp_methods = handle_methods;
  HandleType.tp_getset = handle_getset;
  HandleType.tp_weaklistoffset = offsetof(HandleObject, weakreflist);
  HandleType.tp_free = PyObject_GC_Del;

  TimerHandleType.tp_basicsize = sizeof(TimerHandleObject);
  TimerHandleType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  TimerHandleType.tp_doc = "A callback scheduled at a time (asyncio.TimerHandle's interface).";
  TimerHandleType.tp_base = &HandleType;
  // PyType_Ready checks these before inheriting them, so they are set again here.
  TimerHandleType.tp_dealloc = reinterpret_cast<destructor>(handle_dealloc);
  TimerHandleType.tp_traverse = reinterpret_cast<traverseproc>(handle_traverse);
  TimerHandleType.tp_clear = reinterpret_cast<inquiry>(handle_clear);
  TimerHandleType.tp_hash = reinterpret_cast<hashfunc>(timer_hash);
  TimerHandleType.tp_richcompare = reinterpret_cast<richcmpfunc>(timer_richcompare);
  TimerHandleType.tp_methods = timer_methods;
  TimerHandleType.tp_getset = timer_getset;

  if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&TimerHandleType) < 0) return -1;
  if (PyModule_AddObjectRef(module, "Handle", reinterpret_cast<PyObject*>(&HandleType)) < 0) return -1;
  return PyModule_AddObjectRef(module, "TimerHandle", reinterpret_cast<PyObject*>(&TimerHandleType));
}

HandleObject* handle_new(PyTypeObject* type, PyObject* loop, PyObject* callback,
                         PyObject* const* args, Py_ssize_t nargs, PyObject* context,
                         bool debug) {
  PyObject* tuple = PyTuple_New(nargs);
  if (!tuple) return nullptr;
  for (Py_ssize_t i = 0; i < nargs; ++i) PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
  PyObject* ctx = (context && context != Py_None) ? Py_NewRef(context) : PyContext_CopyCurrent();
  if (!ctx) {
    Py_DECREF(tuple);
    return nullptr;
  }
  HandleObject* h = type == &TimerHandleType
                        ? reinterpret_cast<HandleObject*>(PyObject_GC_New(TimerHandleObject, type))
                        : PyObject_GC_New(HandleObject, type);
  if (!h) {
    Py_DECREF(tuple);
    Py_DECREF(ctx);
    return nullptr;
  }
  h->callback = Py_NewRef(callback);
  h->args = tuple;
  h->context = ctx;
  h->loop = Py_NewRef(loop);
  h->source_traceback = nullptr;
  h->repr = nullptr;
  h->weakreflist = nullptr;
  h->cancelled = false;
  h->sync = 0;
  if (type == &TimerHandleType) {
    as_timer(h)->when = 0.0;
    as_timer(h)->scheduled = false;
  }
  PyObject_GC_Track(h);
  if (debug) {
    h->source_traceback = PyObject_CallNoArgs(helpers.extract_stack);
    if (!h->source_traceback) {
      Py_DECREF(h);
      return nullptr;
    }
  }
  return h;
}

int handle_cancel(HandleObject* handle) {
  PyObject* r = handle_cancel_method(handle, nullptr);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

int handle_run(HandleObject* h) {
  PyObject* callback = nullptr;
  PyObject* args = nullptr;
  PyObject* context = nullptr;
  bool threadsafe = is_threadsafe(h);
  Py_BEGIN_CRITICAL_SECTION(h);
  // New references: the callback may cancel its own handle while it runs.
  if (!h->cancelled && h->callback) {
    callback = Py_NewRef(h->callback);
    args = Py_NewRef(h->args);
    context = Py_NewRef(h->context);
    // Inside the critical section, so a cancel() either came before (and
    // nothing runs) or sees the callback running and waits.
    if (threadsafe) begin_running(h);
  }
  Py_END_CRITICAL_SECTION();
  if (!callback) return 0;

  PyObject* result = nullptr;
  if (PyContext_Enter(context) == 0) {
    auto* tuple = reinterpret_cast<PyTupleObject*>(args);
    result = PyObject_Vectorcall(callback, tuple->ob_item, PyTuple_GET_SIZE(args), nullptr);
    if (PyContext_Exit(context) < 0) Py_CLEAR(result);
  }
  if (threadsafe) end_running(h);
  Py_DECREF(callback);
  Py_DECREF(args);
  Py_DECREF(context);
  if (result) {
    Py_DECREF(result);
    return 0;
  }
  if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) return -1;
  PyObject* exc = PyErr_GetRaisedException();
  PyObject* r = PyObject_CallFunctionObjArgs(helpers.report_callback_error, reinterpret_cast<PyObject*>(h),
                                             exc, nullptr);
  Py_DECREF(exc);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

}  // namespace pyloop::py
