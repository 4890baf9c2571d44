// Parker and RemoteQueue: the cross-thread path of call_soon_threadsafe.
#include <atomic>
#include <chrono>
#include <thread>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "check.hpp"
#include "pyloop/rt/parker.hpp"
#include "pyloop/rt/remote_queue.hpp"

using pyloop::rt::Parker;
using pyloop::rt::RemoteQueue;
using Clock = std::chrono::steady_clock;
using pyloop::rt::ReadyEvent;

// Parkers in these tests watch no fds; park() still needs somewhere to report them.
static ReadyEvent ready[8];

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

TEST(parker_times_out_at_deadline) {
  Parker parker;
  auto t0 = Clock::now();
  CHECK(parker.park(0.02, [] { return false; }, ready) == 0);
  CHECK(seconds_since(t0) >= 0.02);
}

TEST(parker_returns_at_once_when_work_is_pending) {
  Parker parker;
  auto t0 = Clock::now();
  CHECK(parker.park(5.0, [] { return true; }, ready) == 0);
  CHECK(seconds_since(t0) < 1.0);
}

TEST(unpark_wakes_a_parked_thread) {
  Parker parker;
  std::atomic<bool> flag{false};
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    flag.store(true);
    parker.unpark();
  });
  auto t0 = Clock::now();
  while (!flag.load()) parker.park(10.0, [&] { return flag.load(); }, ready);
  CHECK(seconds_since(t0) < 5.0);
  waker.join();
}

static int open_fd_count() {
  int count = 0;
  for (int fd = 0; fd < 4096; ++fd) count += fcntl(fd, F_GETFD) != -1;
  return count;
}

TEST(release_closes_the_fds_while_other_threads_unpark) {
  int before = open_fd_count();
  Parker parker;
  CHECK(open_fd_count() == before + 2);  // the epoll fd and the eventfd
  std::atomic<bool> stop{false};
  std::vector<std::thread> wakers;
  for (int i = 0; i < 4; ++i)
    wakers.emplace_back([&] {
      while (!stop.load()) parker.unpark();
    });
  // The owner parks and wakes a while, with the wakers racing it, then
  // releases the parker with them still unparking.
  for (int i = 0; i < 200; ++i) parker.park(0.001, [] { return false; }, ready);
  parker.release();
  CHECK(open_fd_count() == before);
  // Released, it touches no fd: a fd opened now with a number the parker
  // had keeps its contents.
  int fds[2];
  CHECK(pipe2(fds, O_NONBLOCK) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop.store(true);
  for (auto& w : wakers) w.join();
  char byte;
  CHECK(read(fds[0], &byte, 1) == -1 && errno == EAGAIN);  // nothing was written into it
  close(fds[0]);
  close(fds[1]);
  CHECK(parker.park(0.0, [] { return false; }, ready) < 0);  // and it can't be waited on
  parker.release();  // twice is harmless
}

TEST(remote_queue_loses_nothing_and_keeps_per_producer_order) {
  constexpr int producers = 8;
  constexpr int per_producer = 20000;
  Parker parker;
  RemoteQueue<std::uint64_t> queue(parker);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i)
        queue.push((static_cast<std::uint64_t>(p) << 32) | static_cast<std::uint64_t>(i));
    });
  }
  std::vector<int> next(producers, 0);
  int received = 0;
  bool in_order = true;
  auto t0 = Clock::now();
  double longest_park = 0;
  while (received < producers * per_producer && seconds_since(t0) < 60) {
    auto p0 = Clock::now();
    // A lost wake-up would leave this park waiting for its full 10 seconds.
    parker.park(10.0, [&] { return !queue.empty(); }, ready);
    longest_park = std::max(longest_park, seconds_since(p0));
    queue.drain([&](std::uint64_t v) {
      int p = static_cast<int>(v >> 32);
      int i = static_cast<int>(v & 0xffffffffu);
      if (i != next[p]) in_order = false;
      next[p] = i + 1;
      ++received;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(received == producers * per_producer);
  CHECK(in_order);
  CHECK(longest_park < 5.0);
  CHECK(queue.empty());
}

TEST(remote_queue_empty_sees_push_that_happened_before) {
  Parker parker;
  RemoteQueue<int> queue(parker);
  std::thread t([&] { queue.push(1); });
  t.join();  // the push happens-before this point
  CHECK(!queue.empty());
  int n = 0;
  queue.drain([&](int) { ++n; });
  CHECK(n == 1);
  CHECK(queue.empty());
}

TEST(parker_reports_watched_fds_and_not_its_wakeups) {
  Parker parker;
  int fds[2];
  CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  CHECK(parker.watch(fds[0], pyloop::rt::readable) == 0);
  parker.unpark();  // not parked: no wake-up is written
  CHECK(parker.park(0.0, [] { return false; }, ready) == 0);
  CHECK(write(fds[1], "x", 1) == 1);
  CHECK(parker.park(1.0, [] { return false; }, ready) == 1);
  CHECK(ready[0].token == static_cast<std::uint64_t>(fds[0]));
  parker.unwatch(fds[0]);
  CHECK(parker.park(0.0, [] { return false; }, ready) == 0);
  // A closed fd's number can come back; watching it again must work.
  close(fds[0]);
  parker.unwatch(fds[0]);
  int again[2];
  CHECK(pipe2(again, O_NONBLOCK | O_CLOEXEC) == 0);
  CHECK(parker.watch(again[0], pyloop::rt::readable) == 0);
  close(again[0]);
  close(again[1]);
  close(fds[1]);
}

TEST(spin_returns_a_fd_that_turns_ready_while_it_polls) {
  Parker parker;
  int fds[2];
  CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  CHECK(parker.watch(fds[0], pyloop::rt::readable) == 0);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(write(fds[1], "x", 1) == 1);
  });
  auto t0 = Clock::now();
  CHECK(parker.spin(10.0, [] { return false; }, ready) == 1);
  CHECK(seconds_since(t0) < 5.0);
  CHECK(ready[0].token == static_cast<std::uint64_t>(fds[0]));
  writer.join();
  close(fds[0]);
  close(fds[1]);
}

TEST(spin_stops_for_pending_work_and_gives_up_after_its_time) {
  Parker parker;
  std::atomic<bool> work{false};
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    work.store(true);  // no unpark(): a spinning owner is not parked
  });
  auto t0 = Clock::now();
  CHECK(parker.spin(10.0, [&] { return work.load(); }, ready) == 0);
  CHECK(seconds_since(t0) < 5.0);
  producer.join();
  t0 = Clock::now();
  CHECK(parker.spin(0.02, [] { return false; }, ready) == 0);
  CHECK(seconds_since(t0) >= 0.02);
}
