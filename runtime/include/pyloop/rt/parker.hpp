// Parks the loop thread in the kernel until another thread has work for it,
// a watched fd is ready, or the next timer is due; or polls for those for a
// while first (spin(); see spin_policy.hpp for when that pays).
//
// Threading: one owner thread calls park(), watch() and unwatch(); unpark()
// is safe from any thread. Wake-ups are coalesced: unpark() writes the
// eventfd only when the owner is parked (or about to be), and only the first
// of many concurrent callers does, so a burst of N cross-thread submissions
// costs at most one syscall.
//
// Memory ordering: the owner publishes "parked" and then re-checks for work;
// a producer publishes its work and then reads "parked". All four accesses
// are seq_cst (the producer's publish and the owner's re-check included: see
// RemoteQueue), so they fall in one total order, which forbids the outcome
// where both miss the other's store: no wake-up is ever lost. (seq_cst
// operations rather than fences, because ThreadSanitizer models only these.)
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "pyloop/rt/clock.hpp"
#include "pyloop/rt/reactor.hpp"

namespace pyloop::rt {

class Parker {
 public:
  Parker();  // throws std::system_error when the kernel objects can't be made
  ~Parker();
  Parker(const Parker&) = delete;
  Parker& operator=(const Parker&) = delete;

  // Owner only. Watches fd for the interest set (0 keeps it registered but
  // silent); ready fds come back from park() with the fd as their token.
  // Returns 0 or an errno value.
  int watch(int fd, std::uint32_t interest) noexcept { return watch(fd, interest, static_cast<std::uint64_t>(fd)); }
  // Owner only. The same with a token of the caller's choosing (never ~0).
  // An `exclusive` registration is removed and added anew, which puts this
  // reactor behind any other registered exclusively for fd.
  int watch(int fd, std::uint32_t interest, std::uint64_t token) noexcept;
  // Owner only. Stops watching fd; a fd already closed is not an error.
  void unwatch(int fd) noexcept;

  // Owner only. Blocks until unpark(), a watched fd is ready, the timeout
  // (seconds; 0 polls, negative waits without limit) or a signal, and fills
  // `ready` with the watched fds that are ready. has_work() runs after
  // "parked" is published and must read the producers' state with seq_cst
  // loads; if it reports work, watched fds are polled without waiting.
  // Returns the number of ready fds, or -errno (-EINTR on a signal).
  template <class HasWork>
  int park(double timeout, HasWork&& has_work, std::span<ReadyEvent> ready) {
    if (timeout != 0.0) {
      _parked.store(true, std::memory_order_seq_cst);
      if (has_work()) timeout = 0.0;
    }
    int n = wait(timeout, ready);
    _parked.store(false, std::memory_order_relaxed);
    return n;
  }

  // Owner only. Polls the watched fds without blocking, yielding the core
  // between polls to any thread waiting for it, until one is ready,
  // has_work() reports work (it then reads the producers' state the same
  // way as for park(); no wake-up is published meanwhile) or `seconds` have
  // passed. Fills `ready` as park() does; returns the number of ready fds
  // (0 when work or the time ran out), or -errno.
  template <class HasWork>
  int spin(double seconds, HasWork&& has_work, std::span<ReadyEvent> ready) {
    double end = monotonic_seconds() + seconds;
    do {
      if (int n = wait(0.0, ready); n != 0 || has_work()) return n;
      sched_yield();
    } while (monotonic_seconds() < end);
    return 0;
  }

  // Wake-up statistics (for tools/bench): epoll_waits the owner made, those
  // that returned no event at all (a timeout, or a poll that found
  // nothing), and eventfd writes made to wake it. Any thread may read them.
  [[nodiscard]] std::uint64_t waits() const noexcept { return _waits.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t empty_waits() const noexcept { return _empty_waits.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t wakes() const noexcept { return _wakes.load(std::memory_order_relaxed); }

  // Any thread. Call after publishing, with a seq_cst write, the work the
  // owner should see.
  void unpark() noexcept {
    // The load filters the common case (owner running) without an RMW; the
    // exchange makes exactly one concurrent caller write the eventfd. A
    // caller past the load is counted in _unparking, so that release() can
    // wait for it before it closes the eventfd (seq_cst, to be ordered with
    // release()'s store to _parked and its load of the count).
    if (!_parked.load(std::memory_order_seq_cst)) return;
    _unparking.fetch_add(1, std::memory_order_seq_cst);
    if (_parked.exchange(false, std::memory_order_seq_cst)) signal();
    _unparking.fetch_sub(1, std::memory_order_release);
  }

  // Owner only, once it will never watch or park again (its loop is
  // closed): closes the epoll fd and the eventfd now rather than when the
  // last holder of the parker lets go (work in flight may post for a long
  // while yet). Later unpark() calls find it unparked and touch nothing; one
  // already past its check is waited for, which takes at most one write(2).
  void release() noexcept;

 private:
  int wait(double timeout, std::span<ReadyEvent> ready) noexcept;
  void signal() noexcept;

  std::unique_ptr<Reactor> _reactor;
  int _event_fd = -1;
  // On its own cache line: producers on other cores read it on every submission.
  alignas(64) std::atomic<bool> _parked{false};
  std::atomic<int> _unparking{0};
  // Relaxed: statistics. The first two are written by the owner only; the
  // last by whichever producer wakes it, at most once per park.
  std::atomic<std::uint64_t> _waits{0};
  std::atomic<std::uint64_t> _empty_waits{0};
  std::atomic<std::uint64_t> _wakes{0};
};

}  // namespace pyloop::rt
