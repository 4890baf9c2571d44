// See python_calls.hpp.
#include "python_calls.hpp"

#include <sched.h>

#include <string>

#include "loop_core.hpp"
#include "loop_state.hpp"
#include "python_helpers.hpp"
#include "pyloop/rt/executor.hpp"
#include "pyloop/rt/work_group.hpp"
#include "pyloop/rt/work_pool.hpp"

namespace pyloop::py {

std::unique_ptr<PythonCallDone> CallSink::post(std::unique_ptr<PythonCallDone> done) {
  _posting.fetch_add(1, std::memory_order_seq_cst);
  if (_open.load(std::memory_order_seq_cst)) _inbox->post(std::move(done));
  // Release: the post happens before close() sees the count drop.
  _posting.fetch_sub(1, std::memory_order_release);
  return done;
}

void CallSink::close() noexcept {
  _open.store(false, std::memory_order_seq_cst);
  while (_posting.load(std::memory_order_acquire) != 0) sched_yield();
}

namespace {

// Every call in flight in the process, so that interpreter exit can wait for
// them as concurrent.futures waits for its threads.
rt::WorkGroup all_calls;
// Set at interpreter exit once no call is left: a task that starts after it
// must not touch the interpreter (its thread state is gone with it).
std::atomic<bool> python_gone{false};
std::atomic<int> threads_named{0};

// This pool thread's thread state: made by the first call it runs and kept,
// detached between calls, so a call costs an attach rather than a new state.
thread_local PyThreadState* pool_thread_state = nullptr;

// threading.current_thread() in a call: a threading._DummyThread (the
// thread was not started by threading), named pyloop_executor_N as
// asyncio's pool names its threads asyncio_N.
void name_this_thread() {
  PyObject* threading = PyImport_ImportModule("threading");
  PyObject* thread = threading ? PyObject_CallMethod(threading, "current_thread", nullptr) : nullptr;
  std::string name = "pyloop_executor_" + std::to_string(threads_named.fetch_add(1, std::memory_order_relaxed));
  PyObject* value = thread ? PyUnicode_FromString(name.c_str()) : nullptr;
  if (!value || PyObject_SetAttrString(thread, "name", value) < 0) PyErr_Clear();
  Py_XDECREF(value);
  Py_XDECREF(thread);
  Py_XDECREF(threading);
}

void attach() {
  if (pool_thread_state) {
    PyEval_RestoreThread(pool_thread_state);
    return;
  }
  // Makes this thread's state and attaches it; the matching
  // PyGILState_Release never runs, so the state stays.
  PyGILState_Ensure();
  pool_thread_state = PyThreadState_Get();
  name_this_thread();
}

void detach() { PyEval_SaveThread(); }

// Runs task on the pool, counted in group and in all_calls; task runs
// attached and must release what it holds.
template <class Task>
void submit(std::shared_ptr<rt::WorkGroup> group, Task task) {
  group->start();
  all_calls.start();
  try {
    rt::WorkPool::shared().submit([group, task = std::move(task)]() mutable {
      if (!python_gone.load(std::memory_order_acquire)) {
        attach();
        task(group->queued_cancelled());
        detach();
      }
      group->finish();
      all_calls.finish();
    });
  } catch (...) {
    // Out of memory: the task never runs (what it holds is lost with it).
    group->finish();
    all_calls.finish();
    throw;
  }
}

// --- _native.WorkGroup --------------------------------------------------------

struct WorkGroupObject {
  PyObject_HEAD
  std::shared_ptr<rt::WorkGroup>* group;
};

PyTypeObject* WorkGroupType = nullptr;

std::shared_ptr<rt::WorkGroup>& group_of(PyObject* self) { return *reinterpret_cast<WorkGroupObject*>(self)->group; }

PyObject* group_new(PyTypeObject* type, PyObject*, PyObject*) {
  auto* self = reinterpret_cast<WorkGroupObject*>(type->tp_alloc(type, 0));
  if (self) self->group = new std::shared_ptr<rt::WorkGroup>(std::make_shared<rt::WorkGroup>());
  return reinterpret_cast<PyObject*>(self);
}

void group_dealloc(PyObject* self) {
  delete reinterpret_cast<WorkGroupObject*>(self)->group;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

// run(work): calls work(True) on the pool, or work(False) when the group
// cancelled its queued calls before this one started. What work raises is
// reported as unraisable: the callers' work sets their own futures.
PyObject* group_run(PyObject* self, PyObject* work) {
  if (!PyCallable_Check(work)) {
    PyErr_SetString(PyExc_TypeError, "run() needs a callable");
    return nullptr;
  }
  Py_INCREF(work);
  try {
    submit(group_of(self), [work](bool cancelled) {
      PyObject* r = PyObject_CallOneArg(work, cancelled ? Py_False : Py_True);
      if (!r) PyErr_WriteUnraisable(work);
      Py_XDECREF(r);
      Py_DECREF(work);
    });
  } catch (const std::exception&) {
    return PyErr_NoMemory();
  }
  Py_RETURN_NONE;
}

// wait(timeout=None) -> bool: whether every call finished within timeout.
PyObject* group_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  double timeout = -1;
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "wait() takes at most one argument");
    return nullptr;
  }
  if (nargs == 1 && args[0] != Py_None) {
    timeout = PyFloat_AsDouble(args[0]);
    if (timeout == -1 && PyErr_Occurred()) return nullptr;
    if (timeout < 0) timeout = 0;
  }
  auto group = group_of(self);
  bool idle;
  Py_BEGIN_ALLOW_THREADS
  idle = group->wait_idle(timeout);
  Py_END_ALLOW_THREADS
  return PyBool_FromLong(idle);
}

PyObject* group_cancel_queued(PyObject* self, PyObject*) {
  group_of(self)->cancel_queued();
  Py_RETURN_NONE;
}

PyObject* group_in_flight(PyObject* self, void*) { return PyLong_FromSize_t(group_of(self)->in_flight()); }

PyMethodDef group_methods[] = {
    {"run", group_run, METH_O, "Runs work(True) on the pool (work(False) if cancelled before it starts)."},
    {"wait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(group_wait)), METH_FASTCALL,
     "Waits until no call of this group is in flight; False at the timeout."},
    {"cancel_queued", group_cancel_queued, METH_NOARGS, "Calls of this group not started yet will not run."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef group_getset[] = {
    {"in_flight", group_in_flight, nullptr, "Calls queued or running.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot group_slots[] = {
    {Py_tp_doc, const_cast<char*>("The calls of one executor on the work pool, counted so that its shutdown "
                                  "can wait for them.")},
    {Py_tp_new, reinterpret_cast<void*>(group_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(group_dealloc)},
    {Py_tp_methods, group_methods},
    {Py_tp_getset, group_getset},
    {0, nullptr},
};

PyType_Spec group_spec = {"pyloop._native.WorkGroup", sizeof(WorkGroupObject), 0, Py_TPFLAGS_DEFAULT, group_slots};

// --- module functions ------------------------------------------------------------

PyObject* pool_size(PyObject*, PyObject*) { return PyLong_FromSize_t(rt::WorkPool::shared().size()); }

// (lookups, calls): whether the pools for each have been made.
PyObject* pools_started(PyObject*, PyObject*) {
  return Py_BuildValue("(OO)", rt::Executor::started() ? Py_True : Py_False,
                       rt::WorkPool::started() ? Py_True : Py_False);
}

// Interpreter exit (threading's atexit, before the interpreter goes): waits
// for every call in flight, as concurrent.futures joins its threads.
PyObject* stop_pool(PyObject*, PyObject*) {
  Py_BEGIN_ALLOW_THREADS
  all_calls.wait_idle(-1);
  Py_END_ALLOW_THREADS
  python_gone.store(true, std::memory_order_release);
  Py_RETURN_NONE;
}

PyMethodDef functions[] = {
    {"_pool_size", pool_size, METH_NOARGS, "How many calls the work pool runs at once."},
    {"_pools_started", pools_started, METH_NOARGS, "(lookups, calls): whether their pools have been made."},
    {"_stop_pool", stop_pool, METH_NOARGS, "Waits for every call in flight; no Python runs on the pool after it."},
    {nullptr, nullptr, 0, nullptr},
};

// future.cancelled(), or -1 with an error set.
int is_cancelled(PyObject* future) {
  PyObject* r = PyObject_CallMethod(future, "cancelled", nullptr);
  if (!r) return -1;
  int cancelled = PyObject_IsTrue(r);
  Py_DECREF(r);
  return cancelled;
}

}  // namespace

PyObject* loop_run_in_pool(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3 || !PyObject_TypeCheck(args[0], WorkGroupType) || !PyTuple_Check(args[2])) {
    PyErr_SetString(PyExc_TypeError, "_run_in_pool(group, func, args: tuple)");
    return nullptr;
  }
  if (check_closed(self) < 0) return nullptr;
  PyObject* future = PyObject_CallMethod(reinterpret_cast<PyObject*>(self), "create_future", nullptr);
  if (!future) return nullptr;
  LoopState& s = *self->state;
  std::uint64_t id = s.next_completion_id++;
  s.pending.emplace(id, Py_NewRef(future));
  PyObject* func = Py_NewRef(args[1]);
  PyObject* call_args = Py_NewRef(args[2]);
  // The call keeps its own reference to the future, to see whether it was
  // cancelled before it starts; the loop's, in `pending`, outlives it.
  Py_INCREF(future);
  try {
    submit(group_of(args[0]), [sink = s.calls, id, future, func, call_args](bool cancelled) {
    auto done = std::make_unique<PythonCallDone>();
    done->id = id;
    if (cancelled) {
      done->cancelled = true;
    } else if (int c = is_cancelled(future); c != 0) {
      // As concurrent.futures: a call whose future was cancelled before it
      // started never runs.
      done->skipped = true;
      if (c < 0) PyErr_Clear();
    } else if (PyObject* r = PyObject_Call(func, call_args, nullptr)) {
      done->result = r;
    } else {
      done->error = PyErr_GetRaisedException();
    }
    Py_DECREF(future);
    Py_DECREF(func);
    Py_DECREF(call_args);
    // A closed loop gives it back, freed here, attached.
    sink->post(std::move(done));
    });
  } catch (const std::exception&) {
    s.pending.erase(id);
    Py_DECREF(future);  // pending's
    Py_DECREF(future);
    return PyErr_NoMemory();
  }
  return future;
}

int settle_python_call(LoopCoreObject* self, PythonCallDone& done) {
  LoopState& s = *self->state;
  auto it = s.pending.find(done.id);
  if (it == s.pending.end()) return 0;
  PyObject* future = it->second;
  s.pending.erase(it);
  int rc = 0;
  PyObject* r = PyObject_CallMethod(future, "done", nullptr);
  int is_done = r ? PyObject_IsTrue(r) : -1;
  Py_XDECREF(r);
  if (is_done < 0) {
    rc = -1;
  } else if (!is_done && !done.skipped) {
    if (done.cancelled) {
      r = PyObject_CallMethod(future, "cancel", nullptr);
    } else if (done.error) {
      // As wrap_future: concurrent.futures' CancelledError and
      // InvalidStateError become asyncio's.
      PyObject* name = PyUnicode_FromString("_convert_future_exc");
      PyObject* convert = name ? asyncio_class(helpers.futures_globals, name) : nullptr;
      PyObject* exc = convert ? PyObject_CallOneArg(convert, done.error) : nullptr;
      r = exc ? PyObject_CallMethod(future, "set_exception", "O", exc) : nullptr;
      Py_XDECREF(exc);
      Py_XDECREF(convert);
      Py_XDECREF(name);
    } else {
      // Not CallMethod's "O" format: a tuple result would be splatted.
      PyObject* name = PyUnicode_FromString("set_result");
      r = name ? PyObject_CallMethodOneArg(future, name, done.result) : nullptr;
      Py_XDECREF(name);
    }
    if (!r) {
      // The future refused the outcome (a Future subclass may): asyncio's
      // wrap_future sets it in a callback, whose error goes to the
      // exception handler, leaving the future pending; so does this.
      PyObject* exc = PyErr_GetRaisedException();
      PyObject* context = Py_BuildValue("{s:s,s:N,s:O}", "message",
                                        "Exception in callback setting the outcome of run_in_executor", "exception",
                                        exc, "future", future);
      r = context ? PyObject_CallMethod(reinterpret_cast<PyObject*>(self), "call_exception_handler", "N", context)
                  : nullptr;
    }
    if (!r) rc = -1;
    Py_XDECREF(r);
  }
  Py_DECREF(future);
  return rc;
}

int register_python_calls(PyObject* module) {
  WorkGroupType = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&group_spec));
  if (!WorkGroupType || PyModule_AddObjectRef(module, "WorkGroup", reinterpret_cast<PyObject*>(WorkGroupType)) < 0)
    return -1;
  return PyModule_AddFunctions(module, functions);
}

}  // namespace pyloop::py
