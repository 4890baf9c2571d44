#include "pyloop/rt/work_pool.hpp"

#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tbb_threads.hpp"

namespace pyloop::rt {

std::size_t work_pool_size() { return std::min(32u, std::max(1u, std::thread::hardware_concurrency()) + 4); }

struct WorkPool::Impl {
  Impl() { reserve_tbb_threads(); }
  // No slot reserved for a thread joining the arena (the default one):
  // tasks are only enqueued, so every slot is a worker's.
  tbb::task_arena arena{static_cast<int>(work_pool_size()), 0};
  // The calls, in the order they came: oneTBB starts its enqueued tasks in
  // no set order, so each task runs whichever call is oldest. Calls then
  // start first come, first served, as in asyncio's pool, where a full
  // pool's queue is FIFO (and cancel_futures cancels the latest).
  tbb::concurrent_queue<std::function<void()>> calls;
};

WorkPool::WorkPool() : _impl(new Impl) {}

namespace {
std::atomic<bool> pool_started{false};
}

WorkPool& WorkPool::shared() {
  // Leaked on purpose; see the header.
  static WorkPool* pool = new WorkPool;
  pool_started.store(true, std::memory_order_relaxed);  // a flag for fork(): nothing is ordered by it
  return *pool;
}

bool WorkPool::started() noexcept { return pool_started.load(std::memory_order_relaxed); }

void WorkPool::submit(std::function<void()> task) {
  _impl->calls.push(std::move(task));
  // One task per call, so there is always a call for the task to pop: the
  // push above happens before the task can run.
  _impl->arena.enqueue([impl = _impl] {
    std::function<void()> call;
    if (impl->calls.try_pop(call)) call();
  });
}

std::size_t WorkPool::size() const noexcept { return work_pool_size(); }

}  // namespace pyloop::rt
