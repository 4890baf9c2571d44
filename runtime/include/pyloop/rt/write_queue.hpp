// WriteQueue: what an I/O thread still has to send on one stream, and the
// WriteReport that tells the loop how far it got.
//
// A transport's write that the socket could not take at once goes to the
// stream's I/O thread, which sends it when the socket turns writable, so the
// loop thread never waits on a full socket. The bytes stay where the loop
// keeps them (the Python objects the transport was given, which the loop
// pins until a report says they are sent): the queue holds only pointers,
// so handing a write over costs no copy. A file span (loop.sendfile) is sent
// with sendfile(2), from the page cache straight to the socket. A datagram
// socket's queue holds datagrams, each sent whole to its own destination.
//
// Threading: a WriteQueue belongs to the I/O thread of its stream, which
// touches it only while it holds the stream's write claim (stream.hpp).
// A WriteReport is made there and handed to the loop through its inbox.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>

#include "pyloop/rt/inbox.hpp"

namespace pyloop::rt {

// What one stream's sends came to since the last report. id is the stream's.
struct WriteReport final : Completion {
  std::size_t written = 0;  // bytes of memory spans sent
  int error = 0;            // errno of a failed send: the stream writes no more,
                            // and the loop releases everything it pinned
  std::size_t file_sent = 0;  // bytes of the file span sent: reported with its end only
  bool file_done = false;  // the file span is over: sent, at its file's end, stopped or failed
  int file_error = 0;      // why it failed (errno), if it did
  std::size_t datagrams = 0;  // datagrams done: sent, or (the last one) failed
  int datagram_error = 0;     // errno of the last of them, which failed
};

// Where a datagram goes: an IPv4 or IPv6 address (sockaddr_in fits in a
// sockaddr_in6), or, with length 0, the connected socket's peer.
struct Destination {
  sockaddr_in6 address{};
  socklen_t length = 0;
  [[nodiscard]] const sockaddr* sockaddr_ptr() const noexcept {
    return reinterpret_cast<const sockaddr*>(&address);
  }
};

class WriteQueue {
 public:
  // Queues data[0..length) after what is queued; empty spans are skipped.
  void push(const char* data, std::size_t length) {
    if (length) _spans.push_back({data, length, -1, 0, {}, false});
  }
  // Queues `length` bytes of file_fd from `offset` (0: to the file's end).
  void push_file(int file_fd, off_t offset, std::size_t length) {
    _spans.push_back({nullptr, length ? length : SIZE_MAX, file_fd, offset, {}, false});
  }
  // Queues one datagram (it may be empty) for `to`.
  void push_datagram(const char* data, std::size_t length, const Destination& to) {
    _spans.push_back({data, length, -1, 0, to, true});
  }
  [[nodiscard]] bool empty() const noexcept { return _spans.empty(); }

  // Sends as much as the socket fd takes now, adding to `report`. Returns 0
  // when the queue is empty after it, EAGAIN when the socket is full (wait
  // for it to turn writable), or the errno of a failed send, after which
  // the queue is cleared. A file that fails ends its span only. A datagram
  // that fails is dropped and reported, and EAGAIN returned: asyncio hands
  // the error to the protocol and sends the rest when the socket is next
  // writable.
  int send(int fd, WriteReport& report) noexcept;
  // Drops the file spans (loop.sendfile cancelled); false when none was left.
  bool stop_file() noexcept;
  // Drops everything; a file span dropped is reported over.
  void clear(WriteReport& report) noexcept;

 private:
  struct Span {
    const char* data;  // null for a file span
    std::size_t length;
    int file_fd;
    off_t offset;
    Destination to;  // a datagram's
    bool datagram;
  };
  int send_memory(int fd, WriteReport& report) noexcept;
  int send_datagram(int fd, WriteReport& report) noexcept;
  int send_file(int fd, WriteReport& report) noexcept;
  void pop_front() noexcept {
    _spans.pop_front();
    _front_sent = 0;
  }

  std::deque<Span> _spans;
  std::size_t _front_sent = 0;  // of _spans.front()
};

}  // namespace pyloop::rt
