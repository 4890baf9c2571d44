// ReadChunk and BufferPool: what an I/O thread reads a socket into, and the
// pool it takes those buffers from.
//
// A ReadChunk is a pooled buffer and the completion that carries it to the
// loop in one object, so a read allocates nothing once the pool is warm.
// When its loop has lent a buffer (buffer_supply.hpp), the read goes there
// instead, and the chunk carries the loan.
//
// Lifetime: a pool outlives every chunk it hands out (the I/O threads' pools
// live as long as the process).
//
// Threading: a BufferPool belongs to one I/O thread, which alone calls
// take() and reclaim(). give_back() is safe from any thread (the loop
// thread, once it has copied a chunk into Python), through a lock-free
// queue that the owner drains in reclaim(), once per reactor iteration.
#pragma once

#include <sys/socket.h>

#include <concurrentqueue/concurrentqueue.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pyloop/rt/buffer_supply.hpp"
#include "pyloop/rt/inbox.hpp"

namespace pyloop::rt {

class BufferPool;

struct ReadChunk final : Completion {
  // What one recv() reads at most: see _SocketTransport in pyloop/_loop.py.
  static constexpr std::size_t capacity = 64 * 1024;

  explicit ReadChunk(BufferPool& home) : home(home) {}
  // Lends an unused loan back, then goes back to its pool.
  void release() noexcept override;

  // Where the read goes: the loan's buffer if it has one.
  [[nodiscard]] char* buffer() const noexcept { return loan.data ? loan.data : data.get(); }
  // Takes a loan from `supply` for the next read, if one is there.
  void borrow(BufferSupply& supply) {
    if (supply.borrow(loan)) lender = &supply;
  }
  // Gives an unused loan back to its lender.
  void return_loan() {
    if (loan.data) lender->lend(loan);
    loan = {};
    lender = nullptr;
  }

  BufferPool& home;
  long length = 0;  // recv()'s result: bytes read, 0 at EOF, -1 on error
  int error = 0;    // the errno when length is -1
  // Loop thread: how much of it a BufferedProtocol has taken so far.
  std::size_t consumed = 0;
  // A datagram's sender (address_length 0 for a stream's read).
  sockaddr_storage address;
  socklen_t address_length = 0;
  std::unique_ptr<char[]> data{new char[capacity]};
  Loan loan;
  BufferSupply* lender = nullptr;
};

class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool();

  // Owner only. A chunk from the pool, or a new one when it is empty.
  ReadChunk* take();
  // Owner only. Returns a chunk it did not use.
  void put(ReadChunk* chunk) { _free.push_back(chunk); }
  // Any thread. Returns a chunk taken from this pool.
  void give_back(ReadChunk* chunk) { _returned.enqueue(chunk); }
  // Owner only. Puts the chunks given back since the last call on the free
  // list; beyond `keep` free chunks, the rest are freed.
  void reclaim(std::size_t keep = 64);

  // Owner only: chunks on the free list (for tests).
  [[nodiscard]] std::size_t free_count() const noexcept { return _free.size(); }

 private:
  std::vector<ReadChunk*> _free;
  moodycamel::ConcurrentQueue<ReadChunk*> _returned;
};

}  // namespace pyloop::rt
