// Stream: a connected socket that a loop thread and an I/O thread share.
//
// The loop thread owns the transport and the fd. Reads are done by whichever
// of the two threads is idle when data arrives (see io_thread.hpp); a read
// by the I/O thread comes to the loop as a ReadChunk in the loop's inbox, in
// order, before anything the loop reads itself. Writes go out from the loop
// thread while the socket takes them; what it cannot take is handed to the
// I/O thread (`writes`), and the loop writes nothing itself until the I/O
// thread has reported all of that sent (write_queue.hpp).
//
// Threading: read_claim is taken (try_claim) by a thread before it reads the
// socket (the I/O thread also before it sends on a stream socket, see
// IoThread::read_before_failing) and given back (release) after; it never
// waits. `undelivered`
// counts chunks the I/O thread read that the loop has not handed to the
// protocol yet: while it is non-zero the loop does not read the socket
// itself, which keeps the bytes in order. set_paused, close and the
// counter's decrement are the loop thread's; the rest is for both.
// The write claim is the I/O thread's while it sends (and while it uses the
// fd for that); the loop takes it for good before it lets go of the pinned
// bytes and closes the fd (claim_writes_forever). The members under "I/O
// thread only" are the I/O thread's alone.
//
// Memory ordering: the I/O thread counts a chunk (undelivered) before it
// gives the claim back with a release store; the loop takes the claim with
// an acquire exchange and only then reads the count, so it always sees the
// chunks read before it got the claim.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "pyloop/rt/inbox.hpp"
#include "pyloop/rt/write_queue.hpp"

namespace pyloop::rt {

class IoThread;

class Stream {
 public:
  // What the socket is: the I/O thread reads a UDP socket one datagram
  // per chunk (with its sender), and sends a datagram socket's buffered
  // datagrams one by one. A Unix datagram socket it does not read: one
  // datagram there may be larger than a ReadChunk (asyncio reads up to
  // 256 KiB), so the loop reads it, as asyncio does.
  enum class Kind : std::uint8_t { stream, datagram, unix_datagram };

  Stream(int fd, std::uint64_t id, std::shared_ptr<Inbox> inbox, Kind kind = Kind::stream)
      : _fd(fd), _id(id), _inbox(std::move(inbox)), _kind(kind) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  [[nodiscard]] int fd() const noexcept { return _fd; }
  [[nodiscard]] std::uint64_t id() const noexcept { return _id; }
  [[nodiscard]] Inbox& inbox() const noexcept { return *_inbox; }
  [[nodiscard]] bool datagram() const noexcept { return _kind != Kind::stream; }
  [[nodiscard]] bool shares_reads() const noexcept { return _kind != Kind::unix_datagram; }

  // Either thread: the right to read the socket now. Never waits.
  bool try_claim() noexcept { return !_read_claim.exchange(true, std::memory_order_acquire); }
  void release() noexcept { _read_claim.store(false, std::memory_order_release); }

  // Loop thread: while paused (pause_reading, or no reader at all) the I/O
  // thread leaves the socket alone. Relaxed: a read that races with pausing
  // is delivered after resume_reading, like one already in the inbox.
  void set_paused(bool paused) noexcept { _paused.store(paused, std::memory_order_relaxed); }
  [[nodiscard]] bool paused() const noexcept { return _paused.load(std::memory_order_relaxed); }

  // Loop thread sets, I/O thread reads: the loop has handed this stream's
  // reading to the I/O thread alone (offload_policy.hpp). The loop's own
  // epoll no longer watches the socket, so the I/O thread reads it until
  // it would block, and tries again later whenever it could not (a claim it
  // lost, a pass cut short): nothing else would. Relaxed: the loop re-makes
  // the I/O thread's registration after a change, and a stale read costs
  // one needless retry or, changing back, one read the loop's level-
  // triggered registration sees again.
  void set_offloaded(bool offloaded) noexcept { _offloaded.store(offloaded, std::memory_order_relaxed); }
  [[nodiscard]] bool offloaded() const noexcept { return _offloaded.load(std::memory_order_relaxed); }

  // Holding the claim: a read failed (a reset, say), so neither thread
  // reads again: the socket's error is taken, and the next read would find
  // a clean end of the data instead. (The claim's acquire/release orders
  // these plain accesses.) An end of the data is read again, as asyncio's
  // loop does after pause_reading() and resume_reading(). Never for a
  // datagram socket, which reads on after an error.
  void set_failed() noexcept { _failed = true; }
  [[nodiscard]] bool failed() const noexcept { return _failed; }

  // I/O thread, before release(): one more chunk on its way to the loop.
  // Relaxed: published by release()'s store.
  void count_chunk() noexcept { _undelivered.fetch_add(1, std::memory_order_relaxed); }
  // Loop thread: a chunk reached the protocol (or was dropped).
  void chunk_delivered() noexcept { _undelivered.fetch_sub(1, std::memory_order_relaxed); }
  // Loop thread, holding the claim.
  [[nodiscard]] bool has_undelivered() const noexcept { return _undelivered.load(std::memory_order_relaxed) > 0; }

  // Loop thread, before the fd is closed: takes the claim for good, waiting
  // out a read the I/O thread has begun (one pass over the socket at most).
  void claim_forever() noexcept {
    while (!try_claim()) std::this_thread::yield();
  }

  // I/O thread: the right to send from `writes` now. Never waits.
  bool try_claim_writes() noexcept { return !_write_claim.exchange(true, std::memory_order_acquire); }
  void release_writes() noexcept { _write_claim.store(false, std::memory_order_release); }
  // Loop thread, before it releases the bytes it handed over: from here the
  // I/O thread never reads them (waits out one send at most).
  void claim_writes_forever() noexcept {
    while (!try_claim_writes()) std::this_thread::yield();
  }

  // I/O thread only.
  WriteQueue writes;
  WriteReport* report = nullptr;  // this reactor iteration's, not yet handed over
  int write_error = 0;            // a send failed (errno): later writes are dropped
  std::size_t file_sent = 0;      // of the file span, not reported yet (reported with its end)
  bool write_due = false;         // queued for a send attempt this iteration
  bool read_again = false;        // offloaded: queued for another read next iteration

 private:
  const int _fd;
  const std::uint64_t _id;
  const std::shared_ptr<Inbox> _inbox;
  const Kind _kind;
  bool _failed = false;  // guarded by _read_claim
  std::atomic<bool> _read_claim{false};
  std::atomic<bool> _write_claim{false};
  std::atomic<bool> _paused{true};
  std::atomic<bool> _offloaded{false};
  std::atomic<int> _undelivered{0};
};

}  // namespace pyloop::rt
