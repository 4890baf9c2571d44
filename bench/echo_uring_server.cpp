// The native echo server on io_uring instead of epoll: the measurement
// behind keeping epoll as pyloop's only backend (docs/architecture.md, "Why epoll, not
// io_uring"). Same job as bench/echo_native_server.cpp, one thread, reads
// of up to 256 KiB, but every recv and send is a request on one ring, and
// one io_uring_enter per iteration both submits the iteration's requests
// and waits for completions. If batching the system calls paid, this
// server would spend less CPU per request than the epoll one.
//
// Raw system calls (<linux/io_uring.h>), no liburing. The ring is
// single-issuer with deferred task work (Linux 6.1): completions run in
// this thread, inside io_uring_enter, so their cost shows in the process's
// CPU time as the epoll server's recv and send do.
//
// Prints "ready PORT" once listening on 127.0.0.1 (an ephemeral port), as
// bench/echo_server.py does, and serves until killed.
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "echo_listener.hpp"

namespace {

// The mapped submission and completion rings.
class Ring {
 public:
  bool open(unsigned entries) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
    if (fd_ < 0 || !(p.features & IORING_FEAT_SINGLE_MMAP)) return false;
    std::size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    std::size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    // One mapping holds both rings (IORING_FEAT_SINGLE_MMAP, Linux 5.4).
    void* rings = mmap(nullptr, std::max(sq_len, cq_len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       fd_, IORING_OFF_SQ_RING);
    void* sqes = mmap(nullptr, p.sq_entries * sizeof(io_uring_sqe), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
    if (rings == MAP_FAILED || sqes == MAP_FAILED) return false;
    auto* base = static_cast<char*>(rings);
    // The ring fields are at kernel-given offsets into the shared mapping.
    sq_tail_ = reinterpret_cast<unsigned*>(base + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_mask);
    sq_array_ = reinterpret_cast<unsigned*>(base + p.sq_off.array);
    cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(base + p.cq_off.cqes);
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    return true;
  }

  // A zeroed request, submitted by the next enter().
  io_uring_sqe* request() {
    unsigned index = (*sq_tail_ + queued_) & sq_mask_;
    ++queued_;
    sq_array_[index] = index;
    io_uring_sqe* sqe = &sqes_[index];
    std::memset(sqe, 0, sizeof *sqe);
    return sqe;
  }

  // Submits what is queued and waits for at least one completion.
  bool enter() {
    // The kernel reads the tail without a lock: release makes the requests
    // written above visible before it.
    std::atomic_ref<unsigned>(*sq_tail_).store(*sq_tail_ + queued_, std::memory_order_release);
    unsigned submit = queued_;
    queued_ = 0;
    long rc = syscall(__NR_io_uring_enter, fd_, submit, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
    return rc >= 0 || errno == EINTR;
  }

  // Calls f on each completion, then hands their slots back.
  template <typename F>
  void drain(F f) {
    unsigned head = *cq_head_;
    unsigned tail = std::atomic_ref<unsigned>(*cq_tail_).load(std::memory_order_acquire);
    for (; head != tail; ++head) f(cqes_[head & cq_mask_]);
    std::atomic_ref<unsigned>(*cq_head_).store(head, std::memory_order_release);
  }

 private:
  int fd_ = -1;
  unsigned *sq_tail_ = nullptr, *sq_array_ = nullptr, *cq_head_ = nullptr, *cq_tail_ = nullptr;
  unsigned sq_mask_ = 0, cq_mask_ = 0, queued_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
};

enum Kind : std::uint64_t { accepted = 1, received = 2, sent = 3 };
std::uint64_t tag(Kind kind, int fd) { return (static_cast<std::uint64_t>(fd) << 8) | kind; }

struct Connection {
  std::vector<char> buffer = std::vector<char>(256 * 1024);
  std::size_t echoed = 0, length = 0;  // of the message being echoed
};

class Server {
 public:
  Server(Ring& ring, int listener) : ring_(ring), listener_(listener) {}

  void accept() {
    io_uring_sqe* sqe = ring_.request();
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = listener_;
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->user_data = tag(accepted, listener_);
  }

  void complete(const io_uring_cqe& done) {
    int fd = static_cast<int>(done.user_data >> 8);
    switch (static_cast<Kind>(done.user_data & 0xff)) {
      case accepted:
        if (done.res >= 0) {
          int on = 1;
          setsockopt(done.res, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          connections_[done.res] = std::make_unique<Connection>();
          receive(done.res);
        }
        if (!(done.flags & IORING_CQE_F_MORE)) accept();  // the multishot accept ended
        break;
      case received:
        if (done.res <= 0) return drop(fd);
        connections_[fd]->length = static_cast<std::size_t>(done.res);
        connections_[fd]->echoed = 0;
        send(fd);
        break;
      case sent: {
        if (done.res < 0) return drop(fd);
        Connection& c = *connections_[fd];
        c.echoed += static_cast<std::size_t>(done.res);
        c.echoed < c.length ? send(fd) : receive(fd);  // rest of the message, or the next
        break;
      }
    }
  }

 private:
  void receive(int fd) {
    io_uring_sqe* sqe = ring_.request();
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<std::uint64_t>(connections_[fd]->buffer.data());
    sqe->len = static_cast<unsigned>(connections_[fd]->buffer.size());
    sqe->user_data = tag(received, fd);
  }

  void send(int fd) {
    Connection& c = *connections_[fd];
    io_uring_sqe* sqe = ring_.request();
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<std::uint64_t>(c.buffer.data() + c.echoed);
    sqe->len = static_cast<unsigned>(c.length - c.echoed);
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = tag(sent, fd);
  }

  void drop(int fd) {
    close(fd);
    connections_.erase(fd);
  }

  Ring& ring_;
  int listener_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
};

}  // namespace

int main() {
  int listener = listen_on_loopback();
  if (listener < 0) return 1;
  Ring ring;
  if (!ring.open(1024)) {
    std::perror("io_uring_setup");
    return 1;
  }
  Server server(ring, listener);
  server.accept();
  std::printf("ready %d\n", port_of(listener));
  std::fflush(stdout);
  for (;;) {
    if (!ring.enter()) {
      std::perror("io_uring_enter");
      return 1;
    }
    ring.drain([&](const io_uring_cqe& done) { server.complete(done); });
  }
}
