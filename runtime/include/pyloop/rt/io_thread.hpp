// IoThread: a native thread that reads sockets for loops while they are busy.
//
// How a read finds the idle thread (DESIGN.md lesson 6). A Stream's fd is
// registered exclusively (EPOLLEXCLUSIVE, level-triggered) with its loop's
// own epoll, and after that, exclusively and edge-triggered, with an I/O
// thread's. When data arrives, the kernel wakes only the first of those two
// that has a thread waiting in epoll_wait:
// - the loop thread, if it is parked. It reads and answers on its own, with
//   no hand-off at all, so a request/response at concurrency 1 costs one
//   wake-up, as in a single-threaded loop, and the I/O thread sleeps on;
// - the I/O thread otherwise, i.e. while the loop runs Python. It reads into
//   pooled ReadChunks and hands every read of one reactor iteration to each
//   loop in one bulk enqueue, with at most one wake-up (none when the loop
//   is running), so reading overlaps with the loop's work.
// Neither thread ever waits for the other: a Stream's read claim decides
// who reads when both look at once (stream.hpp).
//
// Offloaded (offload_policy.hpp): under load a loop takes its own
// registration of its streams away, so only this thread's edge-triggered
// one remains; the thread then reads each such stream until it would
// block, and one it could not finish (a pass cut short, a claim the loop
// held) it reads again in its next iteration, polling rather than parking.
// Its reactor is polled briefly before it parks, as the loop's is
// (spin_policy.hpp, PYLOOP_SPIN_US).
//
// Writes. The loop sends a transport's writes itself while the socket takes
// them (that is the common case, and it costs no hand-off); what a full
// socket leaves over, the loop submits to the stream's I/O thread, which
// sends it as the socket drains and reports the progress back (WriteQueue,
// write_queue.hpp). A datagram socket's buffered datagrams go the same way,
// each with its destination; a report ends at a datagram that failed, so
// the loop hands each error to the protocol in its place. The loop
// collects its submissions during an iteration and hands each I/O thread
// its share in one batch, at most one wake-up.
// A send that fails (the peer reset the connection) is first followed by a
// read of what the socket still holds, under the stream's read claim, so
// that the protocol hears of the reset as from asyncio's loop, which reads
// a ready socket before it writes to it (read_before_failing).
// When a send finds the socket full, the I/O thread waits for it to turn
// writable through a registration of its own, in a second epoll that only
// it touches (`_write_waits`, itself watched by the thread's reactor): one
// shot, armed only then, so a socket that signals "writable" all the time
// (a Unix one does each time its peer reads) wakes nobody while nothing
// waits, and the loop's re-registrations never meet the I/O thread's.
//
// Threading: the thread itself runs the reactor. attach, rearm, submit and
// retire are called by the loop thread that owns the stream; attach, rearm
// and retire change the reactor's registrations, which the kernel makes safe
// from any thread, and submissions go through a lock-free queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "pyloop/rt/log.hpp"
#include "pyloop/rt/parker.hpp"
#include "pyloop/rt/reactor.hpp"
#include "pyloop/rt/read_chunk.hpp"
#include "pyloop/rt/remote_queue.hpp"
#include "pyloop/rt/spin_policy.hpp"
#include "pyloop/rt/stream.hpp"

namespace pyloop::rt {

// What a loop hands an I/O thread for a stream, in order: bytes to send
// (after what it handed before), a datagram to send, a file span to send
// (loop.sendfile), the end of that (cancelled), or the stream to forget
// (IoThread::retire).
struct Submission {
  enum class Kind : std::uint8_t { write, datagram, sendfile, stop_sendfile, retire };
  Kind kind = Kind::write;
  Stream* stream = nullptr;
  const char* data = nullptr;  // write, datagram: kept alive by the loop until reported sent
  std::size_t length = 0;      // write, datagram, sendfile (0: to the file's end)
  int file_fd = -1;            // sendfile: kept open by the loop until reported done
  off_t offset = 0;
  Destination to{};  // datagram
};

class IoThread {
 public:
  IoThread();   // starts the thread; throws std::system_error
  ~IoThread();  // stops and joins it
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // Registers the stream's fd, behind the loop's own exclusive registration
  // (make that one first). Returns 0 or an errno value.
  int attach(Stream& stream) noexcept;
  // Registers it again, after the loop has re-made its own exclusive
  // registration (which put the loop behind this thread).
  void rearm(Stream& stream) noexcept { attach(stream); }
  // Hands over items[0..count) in order, waking the thread at most once.
  void submit(Submission* items, std::size_t count) { _submissions.push_bulk(items, count); }
  // Unregisters the stream and deletes it on this thread once no event it
  // has already collected can name it, after the submissions made before.
  // Call after stream.claim_forever() and claim_writes_forever(), before
  // closing the fd.
  void retire(Stream* stream);

  // Chunks this thread has read (those into a loop's loaned buffer among
  // them), and sends it made for loops (for tests and stats).
  [[nodiscard]] std::uint64_t reads() const noexcept { return _reads.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t loaned_reads() const noexcept { return _loaned_reads.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t sends() const noexcept { return _sends.load(std::memory_order_relaxed); }
  // Its wake-up statistics (waits, empty waits, eventfd writes to it).
  [[nodiscard]] const Parker& parker() const noexcept { return _parker; }

 private:
  void run();
  template <class HasWork>
  int wait_for_events(double timeout, HasWork&& has_work, std::span<ReadyEvent> events);
  // to_the_end: the peer has shut down (or may have): an offloaded stream
  // is read until EOF or EAGAIN, not just to a short read.
  void read(Stream& stream, bool to_the_end);
  // Holding the read claim: reads up to `passes` chunks (to_the_end: past a
  // short read, to EOF or EAGAIN). Returns whether the socket was drained.
  bool read_claimed(Stream& stream, int passes, bool to_the_end);
  // Holding the read claim, after a send failed with send_error.
  void read_before_failing(Stream& stream, int send_error);
  void read_later(Stream& stream);
  void write(Stream& stream);
  void wait_writable(Stream& stream);
  void take_writable();
  void report(Stream& stream, WriteReport progress);
  void take_submissions();
  void flush();

  // Taken before the thread starts, and kept: the thread never looks a
  // logger up in spdlog's registry, which the process's static destructors
  // free at exit while this thread, never stopped (IoThreads), still runs.
  std::shared_ptr<spdlog::logger> _log = log::get("io");
  Parker _parker;
  SpinPolicy _spin = SpinPolicy::from_environment();
  RemoteQueue<Submission> _submissions{_parker};
  // Sockets a send found full, armed one-shot for writability. The tokens
  // are Stream pointers, looked up in _waiting before use: a retired
  // stream's registration goes away with its socket, not at once.
  std::unique_ptr<Reactor> _write_waits = make_epoll_reactor();
  std::unordered_set<Stream*> _waiting;
  BufferPool _pool;
  // This iteration's reads and write reports, in order, with the inbox each
  // one goes to.
  std::vector<std::pair<Inbox*, Completion*>> _batch;
  std::vector<Completion*> _run;
  std::vector<Stream*> _due;       // streams with new writes to try
  std::vector<Stream*> _reported;  // streams whose report is in _batch
  std::vector<Stream*> _retired;   // deleted at the end of the iteration
  std::vector<Stream*> _again;     // offloaded streams to read again next iteration
  std::vector<Stream*> _retry;     // this iteration's (last iteration's _again)
  std::atomic<bool> _stopping{false};
  // Written by this thread only; relaxed: statistics, read by anyone.
  std::atomic<std::uint64_t> _reads{0};
  std::atomic<std::uint64_t> _loaned_reads{0};
  std::atomic<std::uint64_t> _sends{0};
  std::thread _thread;
};

// The process's I/O threads: PYLOOP_IO_THREADS of them, none by default
// (io_thread.cpp says why); started with the first loop, never stopped.
class IoThreads {
 public:
  static IoThreads& shared();
  [[nodiscard]] int count() const noexcept { return _count; }
  // In a child made by fork(), before it makes a loop: the threads did not
  // come along, so from then on no stream is given to one (count() is 0).
  void forget_after_fork() noexcept { _count = 0; }
  // Whether shared() has made them in this process (or in its parent).
  static bool made() noexcept { return made_flag().load(std::memory_order_relaxed); }
  // The thread for a new stream (round-robin); nullptr when count() is 0.
  IoThread* pick();
  // Chunks all of them have read (into loans), and sends all of them made.
  [[nodiscard]] std::uint64_t reads() const noexcept;
  [[nodiscard]] std::uint64_t loaned_reads() const noexcept;
  [[nodiscard]] std::uint64_t sends() const noexcept;
  struct WakeStats {
    std::uint64_t waits = 0, empty_waits = 0, wakes = 0;
  };
  // All of them together (Parker's statistics).
  [[nodiscard]] WakeStats wake_stats() const noexcept;

 private:
  IoThreads();
  int _count;
  static std::atomic<bool>& made_flag() noexcept;
  std::vector<std::unique_ptr<IoThread>> _threads;
  std::atomic<unsigned> _next{0};
};

}  // namespace pyloop::rt
