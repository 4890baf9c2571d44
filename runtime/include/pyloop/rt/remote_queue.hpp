// Work sent to a loop from other threads (call_soon_threadsafe): a lock-free
// MPSC queue paired with the loop's Parker.
//
// Threading: push() is safe from any number of threads at once; drain() and
// empty() are for the owner (the loop thread) only. Order holds per producer
// thread (moodycamel's implicit producers are per thread), which is exactly
// asyncio's promise: callbacks from one thread run in the order they were sent.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <iterator>

#include "pyloop/rt/parker.hpp"

namespace pyloop::rt {

template <class T>
class RemoteQueue {
 public:
  explicit RemoteQueue(Parker& parker) : _parker(parker) {}
  RemoteQueue(const RemoteQueue&) = delete;
  RemoteQueue& operator=(const RemoteQueue&) = delete;

  // Any thread. Returns false only when memory for the item could not be had.
  bool push(T item) {
    if (!_queue.enqueue(std::move(item))) return false;
    _pending.fetch_add(1, std::memory_order_seq_cst);  // pairs with Parker, see there
    _parker.unpark();
    return true;
  }

  // Any thread. Pushes items[0..count) as one batch, with one wake-up at
  // most: the I/O threads hand over a reactor iteration's completions so.
  bool push_bulk(T* items, std::size_t count) {
    if (count == 0) return true;
    if (!_queue.enqueue_bulk(std::make_move_iterator(items), count)) return false;
    _pending.fetch_add(static_cast<std::ptrdiff_t>(count), std::memory_order_seq_cst);  // pairs with Parker
    _parker.unpark();
    return true;
  }

  // Owner only. False once a push has completed and not yet been drained, so
  // a push that happened before the caller's check (through a lock, say) is
  // always seen: the loop uses this to keep cross-thread and local callbacks
  // in the order they were made.
  [[nodiscard]] bool empty() const noexcept { return _pending.load(std::memory_order_seq_cst) <= 0; }

  // Owner only. Moves every queued item to sink, in bulk; returns the count.
  template <class Sink>
  std::size_t drain(Sink&& sink) {
    T batch[64];
    std::size_t total = 0;
    for (;;) {
      std::size_t n = _queue.try_dequeue_bulk(batch, 64);
      if (n) _pending.fetch_sub(static_cast<std::ptrdiff_t>(n), std::memory_order_relaxed);
      for (std::size_t i = 0; i < n; ++i) sink(std::move(batch[i]));
      total += n;
      if (n < 64) return total;
    }
  }

 private:
  moodycamel::ConcurrentQueue<T> _queue;
  Parker& _parker;
  // Completed pushes not yet drained. Signed: a drain can take an item whose
  // push has not yet counted it, leaving it briefly at -1; the push's own
  // increment (and wake-up) follows.
  alignas(64) std::atomic<std::ptrdiff_t> _pending{0};
};

}  // namespace pyloop::rt
