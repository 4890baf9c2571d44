// BufferSupply: buffers a loop lends the I/O threads to read its sockets
// into, so that what they read is already where the loop hands it over.
//
// The loop hands a protocol one `bytes` object per read. An I/O thread that
// read into a buffer of its own would make the loop copy the data over: two
// copies between the kernel and the protocol (DESIGN.md, lesson 3). So each
// loop lends, through its inbox, the storage of objects it made itself
// (empty `bytes` objects of ReadChunk::capacity): an I/O thread borrows one,
// reads into it, and the ReadChunk carries the loan back to the loop, which
// hands the object itself to the protocol. The I/O threads never touch the
// objects: `owner` and `tag` are opaque to them, tokens the loop gave and
// gets back.
//
// Threading: lend() and borrow() from any thread (a lock-free queue).
// Ownership: a loan is its lender's object. Whoever holds one lends it
// back or hands it to the loop that made it; the loop takes what is left
// when it goes (take_all, on its own thread).
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pyloop::rt {

struct Loan {
  char* data = nullptr;  // ReadChunk::capacity bytes
  void* owner = nullptr;
  std::uintptr_t tag = 0;
};

class BufferSupply {
 public:
  void lend(const Loan& loan) {
    _loans.enqueue(loan);
    // Relaxed: a count for topping up, never used to find a loan.
    _count.fetch_add(1, std::memory_order_relaxed);
  }
  bool borrow(Loan& loan) {
    if (!_loans.try_dequeue(loan)) return false;
    _count.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  // About how many loans are waiting (exact when no one else lends or borrows).
  [[nodiscard]] std::size_t size() const noexcept {
    auto n = _count.load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  template <class Sink>
  void take_all(Sink&& sink) {
    for (Loan loan; borrow(loan);) sink(loan);
  }

 private:
  moodycamel::ConcurrentQueue<Loan> _loans;
  std::atomic<std::ptrdiff_t> _count{0};
};

}  // namespace pyloop::rt
