#include "pyloop/rt/work_group.hpp"

#include <chrono>

namespace pyloop::rt {

void WorkGroup::finish() noexcept {
  // acq_rel: what the task did happens before a waiter sees the count reach 0.
  if (_in_flight.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Under the lock, so a waiter between its check and its wait cannot miss it.
  std::lock_guard lock(_mutex);
  _idle.notify_all();
}

bool WorkGroup::wait_idle(double timeout_s) {
  std::unique_lock lock(_mutex);
  auto idle = [this] { return _in_flight.load(std::memory_order_acquire) == 0; };
  if (timeout_s < 0) {
    _idle.wait(lock, idle);
    return true;
  }
  return _idle.wait_for(lock, std::chrono::duration<double>(timeout_s), idle);
}

}  // namespace pyloop::rt
