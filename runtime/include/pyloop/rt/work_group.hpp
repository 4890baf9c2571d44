// Counts the tasks one executor has in flight (queued or running), so that
// shutting it down can wait for them, and lets it cancel those not started.
//
// Threading: every method is safe from any thread. start() happens before
// the task is submitted, finish() after it has run; wait_idle() returns once
// every started task has finished, or at the timeout.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace pyloop::rt {

class WorkGroup {
 public:
  void start() noexcept { _in_flight.fetch_add(1, std::memory_order_relaxed); }
  void finish() noexcept;

  // Waits until nothing is in flight: true, or false if timeout_s (< 0:
  // forever) passed first.
  bool wait_idle(double timeout_s);

  // From now on, tasks that have not started yet are not to run.
  void cancel_queued() noexcept { _cancel_queued.store(true, std::memory_order_release); }
  [[nodiscard]] bool queued_cancelled() const noexcept { return _cancel_queued.load(std::memory_order_acquire); }

  [[nodiscard]] std::size_t in_flight() const noexcept { return _in_flight.load(std::memory_order_acquire); }

 private:
  std::atomic<std::size_t> _in_flight{0};
  std::atomic<bool> _cancel_queued{false};
  // Only for waiters: finish() takes the lock only when the count reaches 0.
  std::mutex _mutex;
  std::condition_variable _idle;
};

}  // namespace pyloop::rt
