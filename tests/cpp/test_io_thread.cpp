// I/O threads: the buffer pool, reads handed to the loop in order, and the
// kernel choosing a parked loop over the I/O thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "pyloop/rt/io_thread.hpp"

using namespace pyloop::rt;

namespace {

struct SocketPair {
  int loop_end = -1, peer = -1;
  SocketPair() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
      loop_end = sv[0];
      peer = sv[1];
      int on = 1;
      ioctl(loop_end, FIONBIO, &on);  // the loop's end is non-blocking, as a transport's
    }
  }
  ~SocketPair() {
    if (loop_end >= 0) close(loop_end);
    if (peer >= 0) close(peer);
  }
};

}  // namespace

// What a loop does when its transport lets go of a socket (detach_stream):
// the I/O thread neither reads nor sends on it from here, then forgets it.
static void let_go(IoThread& io, Stream* stream) {
  stream->claim_forever();
  stream->claim_writes_forever();
  io.retire(stream);
}

// Writes `total` bytes in random sizes from another thread, then closes.
static std::string send_all(int fd, std::size_t total, unsigned seed) {
  std::string data(total, '\0');
  std::mt19937 rng(seed);
  for (auto& c : data) c = static_cast<char>(rng());
  std::size_t at = 0;
  while (at < total) {
    std::size_t n = std::min<std::size_t>(total - at, 1 + rng() % 20000);
    ssize_t w = write(fd, data.data() + at, n);
    if (w > 0) at += static_cast<std::size_t>(w);
  }
  shutdown(fd, SHUT_WR);
  return data;
}

TEST(buffer_pool_takes_back_chunks_from_other_threads) {
  BufferPool pool;
  std::vector<ReadChunk*> taken;
  for (int i = 0; i < 8; ++i) taken.push_back(pool.take());
  std::thread giver([&] {
    for (ReadChunk* c : taken) c->release();
  });
  giver.join();
  CHECK(pool.free_count() == 0);
  pool.reclaim();
  CHECK(pool.free_count() == 8);
  ReadChunk* again = pool.take();
  CHECK(again->length == 0 && again->consumed == 0);
  pool.put(again);
  pool.reclaim(2);  // nothing returned: the free list stays as it is
  CHECK(pool.free_count() == 8);
}

// The loop side of a stream, as pyloop's transport does it: delivers the
// I/O thread's chunks in order and reads itself only with the claim held
// and nothing of the I/O thread's undelivered.
static std::string consume(Inbox& inbox, Stream& stream, bool loop_reads_too) {
  std::string got;
  bool eof = false;
  unsigned turn = 0;
  ReadyEvent ready[4];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!eof && std::chrono::steady_clock::now() < deadline) {
    inbox.drain([&](CompletionPtr c) {
      auto* chunk = static_cast<ReadChunk*>(c.get());
      CHECK(chunk->id == stream.id());
      if (chunk->length > 0) got.append(chunk->buffer(), static_cast<std::size_t>(chunk->length));
      if (chunk->length == 0) eof = true;
      stream.chunk_delivered();
    });
    // Every other turn, so that the I/O thread gets its share even when
    // both threads compete for one core.
    if (loop_reads_too && !eof && (turn++ % 2 == 0) && stream.try_claim()) {
      if (!stream.has_undelivered()) {
        char buf[4096];
        ssize_t n = recv(stream.fd(), buf, sizeof buf, 0);
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        if (n == 0) eof = true;
      }
      stream.release();
    } else if (!eof) {
      inbox.parker.park(0.05, [&] { return !inbox.empty(); }, ready);
    }
  }
  return got;
}

static void read_through_io_thread(bool loop_reads_too) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 7, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  stream->set_paused(false);
  std::string sent;
  std::thread peer([&] { sent = send_all(sockets.peer, 4 << 20, loop_reads_too ? 2 : 1); });
  std::string got = consume(*inbox, *stream, loop_reads_too);
  peer.join();
  CHECK(got.size() == sent.size());
  CHECK(got == sent);
  CHECK(io.reads() > 0);
  let_go(io, stream);
}

TEST(io_thread_reads_arrive_in_order) { read_through_io_thread(false); }

TEST(io_thread_and_loop_reading_together_keep_order) { read_through_io_thread(true); }

// Offloaded, no registration of the loop's backs the I/O thread's edge-
// triggered one: what a pass leaves (4 MiB is many passes) must be read
// again by the I/O thread itself, and an EOF that came with the last data
// must not wait for an event that never comes.
TEST(offloaded_stream_is_read_to_the_end_by_the_io_thread_alone) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 11, inbox);
  stream->set_offloaded(true);
  stream->set_paused(false);  // before the registration, as fd_watch does it
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  std::string sent;
  std::thread peer([&] { sent = send_all(sockets.peer, 4 << 20, 3); });
  std::string got = consume(*inbox, *stream, false);
  peer.join();
  CHECK(got == sent);
  let_go(io, stream);
}

TEST(offloaded_stream_gets_data_and_eof_that_arrive_together) {
  for (int round = 0; round < 20; ++round) {
    SocketPair sockets;
    auto inbox = std::make_shared<Inbox>();
    auto* stream = new Stream(sockets.loop_end, 12, inbox);
    stream->set_offloaded(true);
    IoThread io;
    // Both are there before the thread first looks.
    CHECK(write(sockets.peer, "hello", 5) == 5);
    shutdown(sockets.peer, SHUT_WR);
    stream->set_paused(false);
    CHECK(io.attach(*stream) == 0);
    CHECK(consume(*inbox, *stream, false) == "hello");
    let_go(io, stream);
  }
}

TEST(parked_loop_gets_the_socket_not_the_io_thread) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 9, inbox);
  IoThread io;
  // The loop's registration first, as pyloop's fd_watch makes them.
  CHECK(inbox->parker.watch(sockets.loop_end, readable | exclusive) == 0);
  CHECK(io.attach(*stream) == 0);
  stream->set_paused(false);
  ReadyEvent ready[4];
  for (int round = 0; round < 10; ++round) {
    std::thread peer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      CHECK(write(sockets.peer, "x", 1) == 1);
    });
    int n = inbox->parker.park(5.0, [&] { return !inbox->empty(); }, ready);
    peer.join();
    CHECK(n == 1);
    CHECK(stream->try_claim());
    char c;
    CHECK(recv(sockets.loop_end, &c, 1, 0) == 1);
    stream->release();
  }
  CHECK(io.reads() == 0);
  CHECK(inbox->empty());
  let_go(io, stream);
}

TEST(paused_stream_is_left_alone) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 3, inbox);  // streams start paused
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  CHECK(write(sockets.peer, "abc", 3) == 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(io.reads() == 0);
  CHECK(inbox->empty());
  let_go(io, stream);
}

// The loop side of writes handed to an I/O thread: sums the reports until
// `until` says it has what it waits for (or 30 s pass).
template <class Until>
static WriteReport await_reports(Inbox& inbox, std::uint64_t id, Until until) {
  WriteReport total;
  ReadyEvent ready[4];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!until(total) && std::chrono::steady_clock::now() < deadline) {
    inbox.drain([&](CompletionPtr c) {
      auto* report = dynamic_cast<WriteReport*>(c.get());
      CHECK(report != nullptr && report->id == id);
      CHECK(report->file_sent == 0 || report->file_done);  // a file span's progress comes with its end
      total.written += report->written;
      total.file_sent += report->file_sent;
      total.file_done = total.file_done || report->file_done;
      if (report->error) total.error = report->error;
      if (report->file_error) total.file_error = report->file_error;
    });
    inbox.parker.park(0.05, [&] { return !inbox.empty(); }, ready);
  }
  return total;
}

static std::size_t await_reports(Inbox& inbox, std::uint64_t id, std::size_t want, int* error) {
  WriteReport total = await_reports(inbox, id, [&](const WriteReport& r) { return r.written >= want || r.error; });
  *error = total.error;
  return total.written;
}

static std::string random_bytes(std::size_t n, unsigned seed) {
  std::string data(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : data) c = static_cast<char>(rng());
  return data;
}

TEST(io_thread_sends_what_the_socket_could_not_take) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 11, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  // One large write, then many small ones in two batches: the socket
  // (a few hundred KiB) can't take them at once.
  std::string big = random_bytes(3 << 20, 5), small = random_bytes(200000, 6);
  std::vector<Submission> first{{Submission::Kind::write, stream, big.data(), big.size()}};
  for (std::size_t at = 0; at < small.size(); at += 1000)
    first.push_back({Submission::Kind::write, stream, small.data() + at, 1000});
  std::vector<Submission> second{{Submission::Kind::write, stream, big.data(), 0},  // empty: skipped
                                 {Submission::Kind::write, stream, big.data(), 100}};
  std::string got;
  std::thread peer([&] {
    char buf[65536];
    std::size_t want = big.size() + small.size() + 100;
    while (got.size() < want) {
      ssize_t n = read(sockets.peer, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      if (got.size() < (1 << 20)) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a slow reader first
    }
  });
  io.submit(first.data(), first.size());
  io.submit(second.data(), second.size());
  int error = 0;
  std::size_t written = await_reports(*inbox, 11, big.size() + small.size() + 100, &error);
  peer.join();
  CHECK(error == 0);
  CHECK(written == big.size() + small.size() + 100);
  CHECK(got == big + small + big.substr(0, 100));
  let_go(io, stream);
}

TEST(failed_send_is_reported_and_later_writes_dropped) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 12, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  close(sockets.peer);
  sockets.peer = -1;
  std::string data = random_bytes(1000, 7);
  Submission write{Submission::Kind::write, stream, data.data(), data.size()};
  io.submit(&write, 1);
  int error = 0;
  await_reports(*inbox, 12, data.size(), &error);
  CHECK(error == EPIPE);
  io.submit(&write, 1);  // dropped: no report follows
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(inbox->empty());
  let_go(io, stream);
}

// Binds fd to a free port on loopback; returns the address it got.
static sockaddr_in bind_loopback(int fd) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  CHECK(bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  CHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  return addr;
}

// Makes `pair` a TCP connection on loopback: the loop's end non-blocking,
// the buffers small, so that a large write stays buffered.
static void make_tcp(SocketPair& pair) {
  close(pair.loop_end);
  close(pair.peer);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = bind_loopback(listener);
  CHECK(listen(listener, 1) == 0);
  pair.peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  setsockopt(pair.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  CHECK(connect(pair.peer, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  pair.loop_end = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  CHECK(pair.loop_end >= 0);
  setsockopt(pair.loop_end, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  close(listener);
}

TEST(reset_taken_by_a_send_reaches_the_loop_as_a_read_error_after_the_data) {
  SocketPair sockets;
  make_tcp(sockets);
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 14, inbox);
  stream->set_paused(false);  // reading, but no read registration: only the failed send reads
  IoThread io;
  CHECK(write(sockets.peer, "hello", 5) == 5);
  std::string data = random_bytes(1 << 20, 9);
  Submission write{Submission::Kind::write, stream, data.data(), data.size()};
  io.submit(&write, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both ends full by now
  linger abort{1, 0};
  setsockopt(sockets.peer, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  close(sockets.peer);  // a reset
  sockets.peer = -1;
  // What the loop gets, in order: the data, the reset as the read's error
  // (the send took the socket's error, so a read would have found a clean
  // end), then the send's failure.
  std::vector<std::string> got;
  ReadyEvent ready[4];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((got.empty() || got.back().rfind("report", 0) != 0) && std::chrono::steady_clock::now() < deadline) {
    inbox->drain([&](CompletionPtr c) {
      if (auto* report = dynamic_cast<WriteReport*>(c.get())) {
        if (report->error) got.push_back("report " + std::to_string(report->error));
        return;
      }
      auto* chunk = static_cast<ReadChunk*>(c.get());
      got.push_back(chunk->length >= 0 ? std::string(chunk->buffer(), static_cast<std::size_t>(chunk->length))
                                       : "error " + std::to_string(chunk->error));
      stream->chunk_delivered();
    });
    inbox->parker.park(0.05, [&] { return !inbox->empty(); }, ready);
  }
  std::vector<std::string> expected{"hello", "error " + std::to_string(ECONNRESET),
                                    "report " + std::to_string(ECONNRESET)};
  CHECK(got == expected);
  CHECK(stream->try_claim());
  CHECK(stream->failed());  // neither thread reads it again
  stream->release();
  let_go(io, stream);
}

TEST(retired_stream_bytes_are_not_read_after_the_claim) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 13, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  auto* data = new std::string(random_bytes(4 << 20, 8));
  Submission write{Submission::Kind::write, stream, data->data(), data->size()};
  io.submit(&write, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the socket is full by now
  stream->claim_forever();
  stream->claim_writes_forever();
  delete data;  // AddressSanitizer would see a later read
  char buf[65536];
  // Space again: the I/O thread is woken, and must leave the bytes alone.
  while (recv(sockets.peer, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  io.retire(stream);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// A file to send from: `data` written to an unlinked temporary file.
struct TempFile {
  int fd = -1;
  explicit TempFile(const std::string& data) {
    char name[] = "/tmp/pyloop-sendfile-XXXXXX";
    fd = mkstemp(name);
    unlink(name);
    CHECK(fd >= 0 && write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  }
  ~TempFile() { close(fd); }
};

static std::string read_exactly(int fd, std::size_t n) {
  std::string got;
  char buf[65536];
  while (got.size() < n) {
    ssize_t r = read(fd, buf, std::min(sizeof buf, n - got.size()));
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  return got;
}

TEST(io_thread_sends_a_file_span_to_its_end) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 14, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  std::string body = random_bytes(3 << 20, 9);
  TempFile file(body);
  std::string head = random_bytes(1000, 10);
  std::vector<Submission> subs{{Submission::Kind::write, stream, head.data(), head.size()},
                               {Submission::Kind::sendfile, stream, nullptr, 0, file.fd, 1000}};
  std::string got;
  std::thread peer([&] { got = read_exactly(sockets.peer, head.size() + body.size() - 1000); });
  io.submit(subs.data(), subs.size());
  WriteReport total = await_reports(*inbox, 14, [](const WriteReport& r) { return r.file_done; });
  peer.join();
  CHECK(total.error == 0 && total.file_error == 0);
  CHECK(total.written == head.size());
  CHECK(total.file_sent == body.size() - 1000);
  CHECK(got == head + body.substr(1000));
  let_go(io, stream);
}

TEST(stopped_file_span_ends_where_it_was_and_writes_follow) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 15, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  std::string body = random_bytes(8 << 20, 11);
  TempFile file(body);
  Submission send{Submission::Kind::sendfile, stream, nullptr, body.size(), file.fd, 0};
  io.submit(&send, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the socket is full by now
  std::string tail = "after the file";
  std::vector<Submission> subs{{Submission::Kind::stop_sendfile, stream},
                               {Submission::Kind::write, stream, tail.data(), tail.size()}};
  io.submit(subs.data(), subs.size());
  WriteReport total = await_reports(*inbox, 15, [](const WriteReport& r) { return r.file_done; });
  CHECK(total.file_error == 0);
  CHECK(total.file_sent > 0 && total.file_sent < body.size());
  std::string got = read_exactly(sockets.peer, total.file_sent + tail.size());
  CHECK(got == body.substr(0, total.file_sent) + tail);
  let_go(io, stream);
}

TEST(file_span_that_fails_is_reported_and_the_stream_goes_on) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sockets.loop_end, 16, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  int not_open = sockets.peer + 1000;  // a file that is not there: EBADF
  std::string after = "still writable";
  std::vector<Submission> subs{{Submission::Kind::sendfile, stream, nullptr, 100, not_open, 0},
                               {Submission::Kind::write, stream, after.data(), after.size()}};
  io.submit(subs.data(), subs.size());
  WriteReport total = await_reports(*inbox, 16, [&](const WriteReport& r) { return r.file_done && r.written == after.size(); });
  CHECK(total.file_done && total.file_error == EBADF && total.file_sent == 0);
  CHECK(total.error == 0 && total.written == after.size());
  CHECK(read_exactly(sockets.peer, after.size()) == after);
  let_go(io, stream);
}

TEST(reads_land_in_buffers_the_loop_lent) {
  SocketPair sockets;
  auto inbox = std::make_shared<Inbox>();
  std::vector<std::unique_ptr<char[]>> storage;
  for (std::uintptr_t token = 1; token <= 2; ++token) {
    storage.emplace_back(new char[ReadChunk::capacity]);
    inbox->supply.lend({storage.back().get(), reinterpret_cast<void*>(token), token});
  }
  auto* stream = new Stream(sockets.loop_end, 17, inbox);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  stream->set_paused(false);
  CHECK(write(sockets.peer, "hello", 5) == 5);
  ReadyEvent ready[4];
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    inbox->parker.park(0.05, [&] { return !inbox->empty(); }, ready);
    inbox->drain([&](CompletionPtr c) {
      auto* chunk = static_cast<ReadChunk*>(c.get());
      CHECK(chunk->length == 5);
      CHECK(chunk->loan.tag == 1 || chunk->loan.tag == 2);
      CHECK(chunk->buffer() == storage[chunk->loan.tag - 1].get());
      CHECK(std::string(chunk->buffer(), 5) == "hello");
      CHECK(inbox->supply.size() == 1);
      stream->chunk_delivered();
      seen = true;
    });  // released here: the loan goes back
  }
  CHECK(seen);
  CHECK(inbox->supply.size() == 2);
  let_go(io, stream);
}

TEST(io_thread_reads_datagrams_one_per_chunk_with_their_sender) {
  int receiver = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int sender = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = bind_loopback(receiver);
  CHECK(connect(sender, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  CHECK(getsockname(sender, reinterpret_cast<sockaddr*>(&from), &from_len) == 0);

  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(receiver, 18, inbox, Stream::Kind::datagram);
  IoThread io;
  CHECK(io.attach(*stream) == 0);
  stream->set_paused(false);
  std::vector<std::string> sent;
  for (int i = 0; i < 40; ++i) {
    sent.push_back(random_bytes(static_cast<std::size_t>(i * 37 % 1500), static_cast<unsigned>(i)));  // the first is empty
    CHECK(send(sender, sent.back().data(), sent.back().size(), 0) == static_cast<ssize_t>(sent.back().size()));
  }
  // As the loop does: takes the I/O thread's datagrams in order, and when
  // none come, receives what it left (it stops after a batch per event; the
  // loop's own level-triggered registration sees the rest).
  std::vector<std::string> got;
  ReadyEvent ready[4];
  for (int i = 0; i < 200 && got.size() < sent.size(); ++i) {
    int n = inbox->parker.park(0.02, [&] { return !inbox->empty(); }, ready);
    bool delivered = false;
    inbox->drain([&](CompletionPtr c) {
      auto* chunk = static_cast<ReadChunk*>(c.get());
      CHECK(chunk->length >= 0);
      CHECK(chunk->address_length == sizeof(sockaddr_in));
      CHECK(reinterpret_cast<sockaddr_in*>(&chunk->address)->sin_port == from.sin_port);
      got.emplace_back(chunk->buffer(), static_cast<std::size_t>(chunk->length));
      stream->chunk_delivered();
      delivered = true;
    });
    if (n == 0 && !delivered && stream->try_claim()) {
      char buf[2048];
      ssize_t r;
      while (!stream->has_undelivered() && (r = recv(receiver, buf, sizeof buf, 0)) >= 0)
        got.emplace_back(buf, static_cast<std::size_t>(r));
      stream->release();
    }
  }
  CHECK(got == sent);
  CHECK(io.reads() > 0);
  CHECK(!stream->failed());
  let_go(io, stream);
  close(sender);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  close(receiver);
}

// The loop side of datagrams handed to an I/O thread: the reports in order,
// until `want` datagrams are done (or 30 s pass).
static std::vector<WriteReport> await_datagrams(Inbox& inbox, std::uint64_t id, std::size_t want) {
  std::vector<WriteReport> reports;
  std::size_t done = 0;
  ReadyEvent ready[4];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (done < want && std::chrono::steady_clock::now() < deadline) {
    inbox.drain([&](CompletionPtr c) {
      auto* report = dynamic_cast<WriteReport*>(c.get());
      CHECK(report != nullptr && report->id == id);
      done += report->datagrams;
      reports.push_back(*report);
    });
    inbox.parker.park(0.05, [&] { return !inbox.empty(); }, ready);
  }
  return reports;
}

TEST(io_thread_sends_datagrams_whole_as_the_peer_reads) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
  int on = 1;
  ioctl(sv[0], FIONBIO, &on);
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sv[0], 19, inbox, Stream::Kind::unix_datagram);
  IoThread io;  // not attached: the I/O thread only sends for a Unix datagram socket
  // More datagrams than the peer's queue holds (net.unix.max_dgram_qlen).
  std::vector<std::string> sent;
  std::vector<Submission> batch;
  for (int i = 0; i < 300; ++i)
    sent.push_back(random_bytes(static_cast<std::size_t>(i * 53 % 3000), 30u + i));
  for (const auto& d : sent) batch.push_back({Submission::Kind::datagram, stream, d.data(), d.size()});
  std::vector<std::string> got;
  std::thread peer([&] {
    char buf[4096];
    while (got.size() < sent.size()) {
      ssize_t n = recv(sv[1], buf, sizeof buf, 0);
      if (n < 0) break;
      got.emplace_back(buf, static_cast<std::size_t>(n));
      if (got.size() < 30) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow reader first
    }
  });
  io.submit(batch.data(), batch.size());
  std::vector<WriteReport> reports = await_datagrams(*inbox, 19, sent.size());
  peer.join();
  CHECK(got == sent);
  CHECK(reports.size() > 1);  // it waited for the peer at least once
  for (const auto& r : reports) CHECK(r.datagram_error == 0 && r.written == 0 && r.error == 0);
  CHECK(io.sends() > 0);
  let_go(io, stream);
  close(sv[0]);
  close(sv[1]);
}

TEST(failed_datagram_is_reported_in_its_place_and_the_rest_go_on) {
  int receiver = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int sender = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  Destination to;
  auto* addr = reinterpret_cast<sockaddr_in*>(&to.address);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.length = sizeof *addr;
  CHECK(bind(receiver, to.sockaddr_ptr(), to.length) == 0);
  CHECK(getsockname(receiver, reinterpret_cast<sockaddr*>(addr), &to.length) == 0);
  auto inbox = std::make_shared<Inbox>();
  auto* stream = new Stream(sender, 20, inbox, Stream::Kind::datagram);
  IoThread io;
  // The fourth is too large for UDP (EMSGSIZE), the rest arrive.
  std::vector<std::string> sent{"one", "", "three", std::string(70000, 'x'), "five", "six"};
  std::vector<Submission> batch;
  for (const auto& d : sent)
    batch.push_back({Submission::Kind::datagram, stream, d.data(), d.size(), -1, 0, to});
  io.submit(batch.data(), batch.size());
  std::vector<WriteReport> reports = await_datagrams(*inbox, 20, sent.size());
  std::size_t done = 0, failed_at = 0;
  for (const auto& r : reports) {
    done += r.datagrams;
    if (r.datagram_error) {
      CHECK(r.datagram_error == EMSGSIZE);
      CHECK(failed_at == 0);
      failed_at = done;  // the report ends at the datagram that failed
    }
  }
  CHECK(done == sent.size());
  CHECK(failed_at == 4);
  char buf[100];
  for (std::size_t i : {0, 1, 2, 4, 5}) {
    ssize_t n = -1;
    for (int tries = 0; tries < 100 && n < 0; ++tries) {
      n = recv(receiver, buf, sizeof buf, 0);
      if (n < 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))) == sent[i]);
  }
  let_go(io, stream);
  close(sender);
  close(receiver);
}
