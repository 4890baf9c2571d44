// Parks the loop thread in the kernel until another thread has work for it or
// the next timer is due.
//
// Threading: one owner thread calls park(); unpark() is safe from any thread.
// Wake-ups are coalesced: unpark() writes the eventfd only when the owner is
// parked (or about to be), and only the first of many concurrent callers does,
// so a burst of N cross-thread submissions costs at most one syscall.
//
// Memory ordering: the owner publishes "parked" and then re-checks for work;
// a producer publishes its work and then reads "parked". All four accesses
// are seq_cst (the producer's publish and the owner's re-check included: see
// RemoteQueue), so they fall in one total order, which forbids the outcome
// where both miss the other's store: no wake-up is ever lost. (seq_cst
// operations rather than fences, because ThreadSanitizer models only these.)
#pragma once

#include <atomic>

namespace pyloop::rt {

class Parker {
 public:
  Parker();  // throws std::system_error when the kernel objects can't be made
  ~Parker();
  Parker(const Parker&) = delete;
  Parker& operator=(const Parker&) = delete;

  // Owner only. Blocks until unpark(), the timeout (seconds; negative waits
  // without limit) or a signal. has_work() runs after "parked" is published
  // and must read the producers' state with seq_cst loads; if it reports work
  // the call returns at once. Returns 0 or an errno value (EINTR when a
  // signal interrupted the wait).
  template <class HasWork>
  int park(double timeout, HasWork&& has_work) {
    _parked.store(true, std::memory_order_seq_cst);
    if (has_work()) {
      _parked.store(false, std::memory_order_relaxed);
      return 0;
    }
    int err = wait(timeout);
    _parked.store(false, std::memory_order_relaxed);
    return err;
  }

  // Any thread. Call after publishing, with a seq_cst write, the work the
  // owner should see.
  void unpark() noexcept {
    // The load filters the common case (owner running) without an RMW; the
    // exchange makes exactly one concurrent caller write the eventfd.
    if (_parked.load(std::memory_order_seq_cst) && _parked.exchange(false, std::memory_order_relaxed))
      signal();
  }

 private:
  int wait(double timeout) noexcept;
  void signal() noexcept;

  int _epoll_fd = -1;
  int _event_fd = -1;
  bool _has_pwait2 = true;
  // On its own cache line: producers on other cores read it on every submission.
  alignas(64) std::atomic<bool> _parked{false};
};

}  // namespace pyloop::rt
