// The default executor's calls (run_in_executor, to_thread): Python
// callables run on the process's WorkPool (pyloop/rt/work_pool.hpp), each
// pool thread with a thread state of its own, made the first time it runs
// Python and kept. A call's outcome comes back through its loop's inbox and
// completes the asyncio future on the loop thread.
//
// Threading: a CallSink's post() is safe from any thread, close() is the
// loop thread's. A PythonCallDone holds Python objects, so it may be freed
// only by a thread attached to the interpreter: the loop thread draining
// its inbox, or the pool thread that made it, which keeps it when the sink
// has closed. (Other completions hold plain C++ data only, see inbox.hpp.)
#pragma once

#include <Python.h>

#include <atomic>
#include <memory>

#include "pyloop/rt/inbox.hpp"

namespace pyloop::py {

struct LoopCoreObject;

struct PythonCallDone final : rt::Completion {
  ~PythonCallDone() override {
    Py_XDECREF(result);
    Py_XDECREF(error);
  }
  PyObject* result = nullptr;  // owned; the call's return value
  PyObject* error = nullptr;   // owned; or what it raised
  bool cancelled = false;      // not run: its executor shut down with cancel_futures
  bool skipped = false;        // not run: its future was cancelled first
};

// Where a loop's calls post their outcomes. Open until the loop closes;
// closing waits for posts under way, so none lands in an inbox afterwards.
class CallSink {
 public:
  explicit CallSink(std::shared_ptr<rt::Inbox> inbox) : _inbox(std::move(inbox)) {}
  // Posts done, or gives it back (returns it) when the sink is closed.
  std::unique_ptr<PythonCallDone> post(std::unique_ptr<PythonCallDone> done);
  void close() noexcept;

 private:
  std::shared_ptr<rt::Inbox> _inbox;
  // seq_cst, as Parker's release: a post either sees `open` false or is
  // counted in `posting` before close() reads it.
  std::atomic<bool> _open{true};
  std::atomic<int> _posting{0};
};

// Loop._run_in_pool(group, func, args) -> asyncio future of func(*args).
PyObject* loop_run_in_pool(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs);
// Completes the future of a call's outcome (completions.cpp calls it).
int settle_python_call(LoopCoreObject* self, PythonCallDone& done);
// _native.WorkGroup and the pool's module functions.
int register_python_calls(PyObject* module);

}  // namespace pyloop::py
