// WriteQueue: what an I/O thread still has to send on one stream, and the
// WriteReport that tells the loop how far it got.
//
// A transport's write that the socket could not take at once goes to the
// stream's I/O thread, which sends it when the socket turns writable, so the
// loop thread never waits on a full socket. The bytes stay where the loop
// keeps them (the Python objects the transport was given, which the loop
// pins until a report says they are sent): the queue holds only pointers,
// so handing a write over costs no copy.
//
// Threading: a WriteQueue belongs to the I/O thread of its stream, which
// touches it only while it holds the stream's write claim (stream.hpp).
// A WriteReport is made there and handed to the loop through its inbox.
#pragma once

#include <cstddef>
#include <deque>

#include "pyloop/rt/inbox.hpp"

namespace pyloop::rt {

// Bytes of one stream sent since the last report, or the failure that ended
// its writing (the I/O thread then drops what was left: the loop releases
// everything it pinned). id is the stream's.
struct WriteReport final : Completion {
  std::size_t written = 0;
  int error = 0;  // an errno value; 0 when the sends went well
};

class WriteQueue {
 public:
  // Queues data[0..length) after what is queued; empty spans are skipped.
  void push(const char* data, std::size_t length) {
    if (length) _spans.push_back({data, length});
  }
  [[nodiscard]] bool empty() const noexcept { return _spans.empty(); }
  void clear() noexcept {
    _spans.clear();
    _front_sent = 0;
  }

  // Sends as much as the socket fd takes now, adding the count to *sent.
  // Returns 0 when the queue is empty after it, EAGAIN when the socket is
  // full (wait for it to turn writable), or the errno of a failed send, after
  // which the queue is cleared.
  int send(int fd, std::size_t* sent) noexcept;

 private:
  struct Span {
    const char* data;
    std::size_t length;
  };
  std::deque<Span> _spans;
  std::size_t _front_sent = 0;  // of _spans.front()
};

}  // namespace pyloop::rt
