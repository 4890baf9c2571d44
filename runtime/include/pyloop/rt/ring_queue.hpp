// A growable FIFO ring buffer: the loop's ready queue.
//
// Threading: owned by one thread (the loop thread); no method is thread-safe.
// It never shrinks, so a loop that once had a burst of callbacks keeps the
// capacity and pays no further allocations on the hot path.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace pyloop::rt {

template <class T>
class RingQueue {
 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  [[nodiscard]] bool empty() const noexcept { return _size == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return _size; }

  void push_back(T value) {
    if (_size == _capacity) grow();
    _items[(_head + _size) & (_capacity - 1)] = std::move(value);
    ++_size;
  }

  // Visits every item, front to back.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < _size; ++i) f(_items[(_head + i) & (_capacity - 1)]);
  }

  // Precondition: !empty().
  T pop_front() noexcept {
    T value = std::move(_items[_head]);
    _head = (_head + 1) & (_capacity - 1);
    --_size;
    return value;
  }

 private:
  void grow() {
    // Capacity stays a power of two so that wrapping is a mask, not a division.
    std::size_t capacity = _capacity ? _capacity * 2 : 64;
    auto items = std::make_unique<T[]>(capacity);
    for (std::size_t i = 0; i < _size; ++i) items[i] = std::move(_items[(_head + i) & (_capacity - 1)]);
    _items = std::move(items);
    _capacity = capacity;
    _head = 0;
  }

  std::unique_ptr<T[]> _items;
  std::size_t _capacity = 0;
  std::size_t _head = 0;
  std::size_t _size = 0;
};

}  // namespace pyloop::rt
