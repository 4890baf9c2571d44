// RingQueue and TimerHeap: the loop thread's own queues.
#include <string>
#include <vector>

#include "check.hpp"
#include "pyloop/rt/ring_queue.hpp"
#include "pyloop/rt/timer_heap.hpp"

using pyloop::rt::RingQueue;
using pyloop::rt::TimerHeap;

TEST(ring_queue_is_fifo_across_growth_and_wrap) {
  RingQueue<int> q;
  int next_in = 0;
  int next_out = 0;
  // Interleave pushes and pops so the head wraps while the buffer grows.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < round * 7 + 3; ++i) q.push_back(next_in++);
    for (int i = 0; i < round * 5 + 1 && !q.empty(); ++i) CHECK(q.pop_front() == next_out++);
  }
  CHECK(q.size() == static_cast<std::size_t>(next_in - next_out));
  std::vector<int> seen;
  q.for_each([&](int v) { seen.push_back(v); });
  CHECK(seen.size() == q.size());
  CHECK(seen.empty() || seen.front() == next_out);
  while (!q.empty()) CHECK(q.pop_front() == next_out++);
  CHECK(next_out == next_in);
}

TEST(ring_queue_moves_owned_values) {
  RingQueue<std::string> q;
  for (int i = 0; i < 200; ++i) q.push_back(std::string(100, static_cast<char>('a' + i % 26)));
  for (int i = 0; i < 200; ++i) CHECK(q.pop_front() == std::string(100, static_cast<char>('a' + i % 26)));
}

TEST(timer_heap_orders_by_deadline_then_insertion) {
  TimerHeap<int> heap;
  heap.push(3.0, 30);
  heap.push(1.0, 10);
  heap.push(2.0, 20);
  heap.push(1.0, 11);  // same deadline as 10: must come after it
  heap.push(1.0, 12);
  std::vector<int> order;
  while (!heap.empty()) order.push_back(heap.pop());
  CHECK((order == std::vector<int>{10, 11, 12, 20, 30}));
}

TEST(timer_heap_fifo_for_many_equal_deadlines) {
  TimerHeap<int> heap;
  for (int i = 0; i < 1000; ++i) heap.push(5.0, i);
  for (int i = 0; i < 1000; ++i) CHECK(heap.pop() == i);
}

TEST(timer_heap_remove_if_keeps_heap_order) {
  TimerHeap<int> heap;
  for (int i = 0; i < 300; ++i) heap.push(static_cast<double>((i * 37) % 300), i);
  std::vector<int> removed;
  heap.remove_if([](int v) { return v % 3 == 0; }, [&](int v) { removed.push_back(v); });
  CHECK(removed.size() == 100);
  CHECK(heap.size() == 200);
  double last = -1.0;
  while (!heap.empty()) {
    double when = heap.top().when;
    CHECK(when >= last);
    last = when;
    CHECK(heap.pop() % 3 != 0);
  }
}

TEST(timer_heap_clear_hands_back_everything) {
  TimerHeap<int> heap;
  for (int i = 0; i < 10; ++i) heap.push(i, i);
  int sum = 0;
  heap.clear([&](int v) { sum += v; });
  CHECK(sum == 45);
  CHECK(heap.empty());
}
