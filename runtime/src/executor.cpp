#include "pyloop/rt/executor.hpp"

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tbb_threads.hpp"

namespace pyloop::rt {

// Blocking calls hold a worker for their whole duration, so the pool is sized
// for waiting, not only for the cores.
std::size_t executor_pool_size() { return std::max(4u, std::thread::hardware_concurrency()); }

struct Executor::Impl {
  Impl() { reserve_tbb_threads(); }
  tbb::task_arena arena{static_cast<int>(executor_pool_size())};
};

Executor::Executor() : _impl(new Impl) {}

namespace {
std::atomic<bool> executor_started{false};
}

Executor& Executor::shared() {
  // Leaked on purpose; see the header.
  static Executor* executor = new Executor;
  executor_started.store(true, std::memory_order_relaxed);  // a flag for fork(): nothing is ordered by it
  return *executor;
}

bool Executor::started() noexcept { return executor_started.load(std::memory_order_relaxed); }

void Executor::submit(std::function<void()> task) { _impl->arena.enqueue(std::move(task)); }

}  // namespace pyloop::rt
