// The work pool and work groups: calls start in the order they came, as
// many run at once as the pool's size, and a group's wait sees every call
// of its own finished.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "check.hpp"
#include "pyloop/rt/work_group.hpp"
#include "pyloop/rt/work_pool.hpp"

using namespace pyloop::rt;

TEST(work_pool_starts_calls_in_order_and_runs_size_at_once) {
  WorkPool& pool = WorkPool::shared();
  const std::size_t size = pool.size();
  CHECK(size >= 5);  // min(32, cores + 4)
  WorkGroup group;
  std::atomic<bool> release{false};
  std::atomic<std::size_t> running{0}, peak{0};
  std::mutex order_mutex;
  std::vector<std::size_t> order;
  const std::size_t calls = size * 3;
  for (std::size_t i = 0; i < calls; ++i) {
    group.start();
    pool.submit([&, i] {
      {
        std::lock_guard lock(order_mutex);
        order.push_back(i);
      }
      std::size_t now = running.fetch_add(1) + 1;
      for (std::size_t p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
      }
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      running.fetch_sub(1);
      group.finish();
    });
  }
  // Until the pool is full: exactly `size` calls have started.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (running.load() < size && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(running.load() == size);
  CHECK(!group.wait_idle(0.01));
  release = true;
  CHECK(group.wait_idle(10));
  CHECK(group.in_flight() == 0);
  CHECK(peak.load() == size);
  // The first `size` calls started first, whatever order oneTBB ran its tasks in.
  std::vector<std::size_t> first(order.begin(), order.begin() + static_cast<long>(size));
  for (std::size_t i = 0; i < size; ++i) CHECK(first[i] < size);
  CHECK(order.size() == calls);
}

TEST(work_group_marks_queued_calls_cancelled) {
  WorkGroup group;
  CHECK(!group.queued_cancelled());
  group.cancel_queued();
  CHECK(group.queued_cancelled());
  CHECK(group.wait_idle(0));  // nothing in flight
}
