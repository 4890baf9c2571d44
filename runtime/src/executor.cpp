#include "pyloop/rt/executor.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <thread>

namespace pyloop::rt {

namespace {
// Blocking calls hold a worker for their whole duration, so the pool is sized
// for waiting, not only for the cores.
int pool_size() { return static_cast<int>(std::max(4u, std::thread::hardware_concurrency())); }
}  // namespace

struct Executor::Impl {
  // oneTBB caps its workers at cores - 1 unless told otherwise; on a 2-core
  // machine that would run one lookup at a time.
  tbb::global_control parallelism{tbb::global_control::max_allowed_parallelism,
                                  static_cast<std::size_t>(pool_size()) + 1};
  tbb::task_arena arena{pool_size()};
};

Executor::Executor() : _impl(new Impl) {}

Executor& Executor::shared() {
  // Leaked on purpose; see the header.
  static Executor* executor = new Executor;
  return *executor;
}

void Executor::submit(std::function<void()> task) { _impl->arena.enqueue(std::move(task)); }

}  // namespace pyloop::rt
