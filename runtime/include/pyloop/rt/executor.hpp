// The process-wide pool for blocking native work (getaddrinfo today): a
// oneTBB task_arena. Its tasks never touch the Python interpreter; they hand
// their results to a loop through that loop's Inbox.
//
// Threading: submit() is safe from any thread. The pool is made on first use
// and deliberately never destroyed: destroying it at exit would wait for any
// task still blocked in a system call.
#pragma once

#include <functional>

namespace pyloop::rt {

class Executor {
 public:
  static Executor& shared();
  // Whether shared() has made the pool in this process (or, after fork(),
  // in the parent: then it has no threads here).
  static bool started() noexcept;

  // Runs task on a pool thread, some time later.
  void submit(std::function<void()> task);

 private:
  Executor();
  struct Impl;
  Impl* _impl;
};

}  // namespace pyloop::rt
