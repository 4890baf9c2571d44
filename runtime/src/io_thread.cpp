#include "pyloop/rt/io_thread.hpp"

#include <pthread.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "pyloop/rt/env.hpp"
#include "pyloop/rt/hand_over.hpp"
#include "pyloop/rt/log.hpp"

namespace pyloop::rt {

namespace {

// Reads per ready event at most, so one busy socket can't starve the rest;
// what is left is seen by the loop's level-triggered registration, or, for
// an offloaded stream, read in the next iteration. A datagram read is one
// datagram, often small: more of those.
constexpr int reads_per_event = 4;
constexpr int datagrams_per_event = 16;
// Reads before a failed send's report at most (read_before_failing): all a
// socket's receive buffer holds, short of a peer that keeps sending to a
// socket it will not read from.
constexpr int reads_before_failing = 1024;

// None unless asked for: I/O threads cost throughput in the echo benchmark
// on 2 cores and on 16 (docs/performance.md, "I/O threads").
constexpr long default_count = 0;

int configured_count() {
  return static_cast<int>(env_count("PYLOOP_IO_THREADS", 64, default_count, "io", "count"));
}

// _write_waits' token among the thread's own registrations (a Stream
// pointer is never 1).
constexpr std::uint64_t write_waits_token = 1;

}  // namespace

IoThread::IoThread() : _thread([this] {
  // Named, so that a profile or the benchmark's per-thread CPU can tell it.
  pthread_setname_np(pthread_self(), "pyloop-io");
  // Before the loop starts: the thread alone touches its reactor.
  if (int err = _parker.watch(_write_waits->pollable_fd(), readable, write_waits_token))
    _log->error("I/O thread cannot watch its write waits: errno {}", err);
  run();
}) {}

IoThread::~IoThread() {
  _stopping.store(true, std::memory_order_seq_cst);  // pairs with park()'s check
  _parker.unpark();
  _thread.join();
  _submissions.drain([](const Submission& sub) {
    if (sub.kind == Submission::Kind::retire) delete sub.stream;
  });
}

int IoThread::attach(Stream& stream) noexcept {
  // Offloaded, the loop's own registration is gone, so this one needs no
  // exclusivity, and it asks for the peer's shutdown too, which the kernel
  // refuses with `exclusive`.
  std::uint32_t interest = stream.offloaded() ? readable | peer_closed | edge : readable | exclusive | edge;
  return _parker.watch(stream.fd(), interest, reinterpret_cast<std::uint64_t>(&stream));
}

void IoThread::retire(Stream* stream) {
  _parker.unwatch(stream->fd());
  Submission retired{Submission::Kind::retire, stream};
  submit(&retired, 1);
}

void IoThread::run() {
  _log->debug("I/O thread {} started", static_cast<void*>(this));
  ReadyEvent events[256];
  auto has_work = [this] { return !_submissions.empty() || _stopping.load(std::memory_order_seq_cst); };
  while (!_stopping.load(std::memory_order_relaxed)) {
    // Streams whose reading the last iteration cut short are read again
    // after this iteration's events, so the wait only polls.
    _retry.swap(_again);
    int n = wait_for_events(_retry.empty() ? -1.0 : 0.0, has_work, events);
    for (int i = 0; i < n; ++i) {
      if (events[i].token == write_waits_token) {
        take_writable();
      } else {
        read(*reinterpret_cast<Stream*>(events[i].token), events[i].ready & ReadyEvent::hangup);
      }
    }
    for (Stream* s : _retry) {
      s->read_again = false;
      read(*s, true);
    }
    _retry.clear();
    take_submissions();
    flush();
    // Retired streams go only now: no event collected above names them
    // after this point, and nothing later will (they are unregistered).
    for (Stream* s : _retired) {
      _waiting.erase(s);
      if (s->read_again) std::erase(_again, s);
      delete s;
    }
    _retired.clear();
    _pool.reclaim();
  }
}

template <class HasWork>
int IoThread::wait_for_events(double timeout, HasWork&& has_work, std::span<ReadyEvent> events) {
  // Under load the next event is often microseconds away: poll for it
  // first, as the loop does (spin_policy.hpp), where that pays.
  double window = timeout < 0.0 ? _spin.window() : 0.0;
  if (window <= 0.0) return _parker.park(timeout, has_work, events);
  double start = monotonic_seconds();
  if (int n = _parker.spin(window, has_work, events); n != 0 || has_work()) return n;
  int n = _parker.park(timeout, has_work, events);
  _spin.waited(monotonic_seconds() - start);
  return n;
}

void IoThread::read_later(Stream& stream) {
  if (!std::exchange(stream.read_again, true)) _again.push_back(&stream);
}

void IoThread::take_submissions() {
  _submissions.drain([this](const Submission& sub) {
    Stream& stream = *sub.stream;
    WriteReport progress;
    switch (sub.kind) {
      case Submission::Kind::retire:
        _retired.push_back(&stream);
        return;
      case Submission::Kind::write:
        // After a failure the loop lets go of these on the failure's report.
        if (stream.write_error) return;
        stream.writes.push(sub.data, sub.length);
        break;
      case Submission::Kind::datagram:
        stream.writes.push_datagram(sub.data, sub.length, sub.to);
        break;
      case Submission::Kind::sendfile:
        if (stream.write_error) {
          progress.file_done = true;
          progress.file_error = stream.write_error;
          report(stream, progress);
          return;
        }
        stream.writes.push_file(sub.file_fd, sub.offset, sub.length);
        break;
      case Submission::Kind::stop_sendfile:
        // Nothing to report when the span was over before the stop came.
        progress.file_done = stream.writes.stop_file();
        report(stream, progress);
        return;
    }
    if (!std::exchange(stream.write_due, true)) _due.push_back(&stream);
  });
  for (Stream* stream : _due) {
    stream->write_due = false;
    write(*stream);
  }
  _due.clear();
}

void IoThread::write(Stream& stream) {
  // The write claim fails only once the loop has taken it for good (the
  // stream is being retired): its bytes may be gone, so they are not read.
  // It is held until this thread is done with the fd, which the loop closes
  // only after it has taken the claim.
  if (stream.writes.empty() || !stream.try_claim_writes()) return;
  // A stream socket is sent to holding its read claim too, so that the
  // loop does not read it between a failed send and read_before_failing.
  const bool reads_first = !stream.datagram();
  if (reads_first && !stream.try_claim()) {
    // The loop is reading it: try again once that is over (a writable
    // socket is reported at once, level-triggered).
    wait_writable(stream);
    stream.release_writes();
    return;
  }
  WriteReport progress;
  int err = stream.writes.send(stream.fd(), progress);
  if (err == EAGAIN) {
    wait_writable(stream);  // the rest goes when the socket turns writable
  } else if (err != 0) {
    stream.write_error = progress.error = err;
    if (progress.file_done && !progress.file_error) progress.file_error = err;
    std::size_t posted = _batch.size();
    if (reads_first) read_before_failing(stream, err);
    // The failure's report goes after the reads, not into an earlier report.
    if (_batch.size() != posted) stream.report = nullptr;
  }
  if (reads_first) stream.release();
  stream.release_writes();
  if (progress.written || progress.file_sent || progress.datagrams)
    _sends.store(_sends.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  report(stream, progress);
}

void IoThread::read_before_failing(Stream& stream, int send_error) {
  // A send fails when the peer has reset the connection, and it may take
  // the socket's error with it (TCP's ECONNRESET): a read would then see a
  // clean end of the data, as if the peer had only shut down its side.
  // asyncio's loop reads a ready socket before it writes to it, so its
  // protocol gets what arrived, then the read's error (a Unix socket's
  // ECONNRESET, where the send failed with EPIPE) or, where the send took
  // it, the same error from the write: never eof_received. So the data and
  // the read's end go to the loop ahead of the failure, all of it (a later
  // read would see that false end), and an end the send's reset
  // emptied is that reset. While reading is paused asyncio only writes, and
  // so does this: the protocol gets the send's error.
  if (stream.paused() || stream.failed()) return;
  std::size_t posted = _batch.size();
  read_claimed(stream, reads_before_failing, true);
  if (send_error != ECONNRESET || _batch.size() == posted) return;
  auto* end = static_cast<ReadChunk*>(_batch.back().second);
  if (end->length == 0) {
    end->length = -1;
    end->error = ECONNRESET;
    stream.set_failed();
  }
}

void IoThread::wait_writable(Stream& stream) {
  // Level-triggered: a socket that drained before this call is reported at once.
  auto token = reinterpret_cast<std::uint64_t>(&stream);
  int err = _write_waits->modify(stream.fd(), writable | oneshot, token);
  if (err == ENOENT) err = _write_waits->add(stream.fd(), writable | oneshot, token);
  if (err) {
    _log->error("I/O thread cannot wait for fd {} to be writable: errno {}", stream.fd(), err);
    return;
  }
  _waiting.insert(&stream);
}

void IoThread::take_writable() {
  ReadyEvent ready[64];
  int n;
  do {
    n = _write_waits->wait(ready, 0.0);
    for (int i = 0; i < n; ++i) {
      // Unknown: a retired stream's, whose socket is still open elsewhere.
      if (auto* stream = reinterpret_cast<Stream*>(ready[i].token); _waiting.erase(stream)) write(*stream);
    }
  } while (n == 64);
}

void IoThread::report(Stream& stream, WriteReport progress) {
  // A file span's progress goes to the loop with its end: the loop needs
  // only the total, and a report per chunk would wake it for nothing.
  stream.file_sent += std::exchange(progress.file_sent, 0);
  if (progress.file_done) progress.file_sent = std::exchange(stream.file_sent, 0);
  if (!progress.written && !progress.error && !progress.file_sent && !progress.file_done &&
      !progress.datagrams)
    return;
  // A report ends at a failed datagram: later ones start the next.
  if (!stream.report || (stream.report->datagram_error && progress.datagrams)) {
    stream.report = new WriteReport;
    stream.report->id = stream.id();
    _batch.emplace_back(&stream.inbox(), stream.report);
    _reported.push_back(&stream);
  }
  WriteReport& r = *stream.report;
  r.written += progress.written;
  r.file_sent += progress.file_sent;
  r.file_done = r.file_done || progress.file_done;
  r.datagrams += progress.datagrams;
  if (progress.error) r.error = progress.error;
  if (progress.file_error) r.file_error = progress.file_error;
  if (progress.datagram_error) r.datagram_error = progress.datagram_error;
}

void IoThread::read(Stream& stream, bool to_the_end) {
  if (stream.paused()) return;
  const bool offloaded = stream.offloaded();
  if (!stream.try_claim()) {
    // The loop holds it (a read of its own, begun before it offloaded).
    if (offloaded) read_later(stream);
    return;
  }
  int passes = stream.datagram() ? datagrams_per_event : reads_per_event;
  bool drained = read_claimed(stream, passes, offloaded && to_the_end);
  stream.release();
  if (offloaded && !drained) read_later(stream);
}

bool IoThread::read_claimed(Stream& stream, int passes, bool to_the_end) {
  if (stream.failed()) return true;  // nothing to read, ever
  const bool datagram = stream.datagram();
  for (int pass = 0; pass < passes; ++pass) {
    ReadChunk* chunk = _pool.take();
    chunk->borrow(stream.inbox().supply);
    ssize_t n;
    do {
      if (datagram) {
        chunk->address_length = sizeof chunk->address;
        n = recvfrom(stream.fd(), chunk->buffer(), ReadChunk::capacity, 0, reinterpret_cast<sockaddr*>(&chunk->address),
                     &chunk->address_length);
      } else {
        n = recv(stream.fd(), chunk->buffer(), ReadChunk::capacity, 0);
      }
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      chunk->return_loan();
      _pool.put(chunk);
      return true;
    }
    chunk->id = stream.id();
    chunk->length = n;
    chunk->error = n < 0 ? errno : 0;
    stream.count_chunk();
    _reads.store(_reads.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (chunk->loan.data)
      _loaned_reads.store(_loaned_reads.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    _batch.emplace_back(&stream.inbox(), chunk);
    if (datagram) {
      // An empty datagram is one too; an error (a refused earlier send) is
      // the protocol's to hear, and reading goes on at the next readiness.
      if (n < 0) return false;
      continue;
    }
    if (n < 0) stream.set_failed();
    if (n <= 0) return true;  // nothing more until the next event
    // A short read drained the socket, unless the peer's EOF came with
    // the data: then only the next read sees it, and, edge-triggered, an
    // offloaded stream gets no other event for it.
    if (n < static_cast<ssize_t>(ReadChunk::capacity) && !to_the_end) return true;
  }
  return false;
}

void IoThread::flush() {
  for (Stream* stream : _reported) stream->report = nullptr;
  _reported.clear();
  // One bulk hand-over per inbox, each in read order.
  hand_over_by_key(_batch, _run, [](Inbox* inbox, Completion** run, std::size_t n) { inbox->post_bulk(run, n); });
}

IoThreads& IoThreads::shared() {
  // Leaked on purpose: I/O threads serve loops until the process exits, and
  // joining them from a static destructor would race with interpreter
  // shutdown.
  static IoThreads* threads = new IoThreads();
  made_flag().store(true, std::memory_order_relaxed);  // a flag for fork(): nothing is ordered by it
  return *threads;
}

std::atomic<bool>& IoThreads::made_flag() noexcept {
  static std::atomic<bool> made{false};
  return made;
}

IoThreads::IoThreads() : _count(configured_count()) {
  _threads.reserve(static_cast<std::size_t>(_count));
  for (int i = 0; i < _count; ++i) _threads.push_back(std::make_unique<IoThread>());
  log::get("io")->debug("{} I/O threads", _count);
}

std::uint64_t IoThreads::reads() const noexcept {
  std::uint64_t total = 0;
  for (const auto& thread : _threads) total += thread->reads();
  return total;
}

std::uint64_t IoThreads::loaned_reads() const noexcept {
  std::uint64_t total = 0;
  for (const auto& thread : _threads) total += thread->loaned_reads();
  return total;
}

IoThreads::WakeStats IoThreads::wake_stats() const noexcept {
  WakeStats total;
  for (const auto& thread : _threads) {
    total.waits += thread->parker().waits();
    total.empty_waits += thread->parker().empty_waits();
    total.wakes += thread->parker().wakes();
  }
  return total;
}

std::uint64_t IoThreads::sends() const noexcept {
  std::uint64_t total = 0;
  for (const auto& thread : _threads) total += thread->sends();
  return total;
}

IoThread* IoThreads::pick() {
  if (_count == 0) return nullptr;
  // Relaxed: any spread will do; this runs once per connection.
  unsigned i = _next.fetch_add(1, std::memory_order_relaxed);
  return _threads[i % static_cast<unsigned>(_count)].get();
}

}  // namespace pyloop::rt
