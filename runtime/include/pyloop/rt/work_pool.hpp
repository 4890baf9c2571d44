// The process-wide pool for the loops' default executor: a oneTBB
// task_arena whose workers steal tasks from each other. Its tasks are the
// callables of run_in_executor and to_thread; the extension wraps each in
// what runs it in the interpreter (pyloop/native/python_calls.cpp), so this
// pool never touches Python itself.
//
// Sized as asyncio's default executor is, min(32, cores + 4), not to the
// cores alone: to_thread is used for blocking calls (files, sleeps, client
// libraries) as much as for CPU work, and a blocked task holds its worker.
//
// Threading: submit() is safe from any thread. The pool is made on first use
// and never destroyed, as the Executor is (a task may be blocked at exit).
#pragma once

#include <cstddef>
#include <functional>

namespace pyloop::rt {

class WorkPool {
 public:
  static WorkPool& shared();
  // Whether shared() has made the pool in this process (or, after fork(),
  // in the parent: then it has no threads here).
  static bool started() noexcept;

  // Runs task on a pool thread, some time later. Tasks start in the order
  // they were submitted (per submitting thread), finish in any.
  void submit(std::function<void()> task);

  // How many tasks can run at once.
  [[nodiscard]] std::size_t size() const noexcept;

 private:
  WorkPool();
  struct Impl;
  Impl* _impl;
};

}  // namespace pyloop::rt
