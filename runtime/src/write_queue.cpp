#include "pyloop/rt/write_queue.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

namespace pyloop::rt {

namespace {
// Spans per sendmsg(): enough to fill a socket buffer with small writes.
constexpr std::size_t max_iov = 64;
}  // namespace

int WriteQueue::send(int fd, std::size_t* sent) noexcept {
  while (!_spans.empty()) {
    iovec iov[max_iov];
    std::size_t count = 0;
    for (auto it = _spans.begin(); it != _spans.end() && count < max_iov; ++it, ++count) {
      std::size_t skip = count == 0 ? _front_sent : 0;
      // sendmsg() reads the spans only; iovec has no const member.
      iov[count] = {const_cast<char*>(it->data + skip), it->length - skip};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return EAGAIN;
      int err = errno;
      clear();
      return err;
    }
    *sent += static_cast<std::size_t>(n);
    for (auto left = static_cast<std::size_t>(n); left > 0;) {
      std::size_t rest = _spans.front().length - _front_sent;
      if (left < rest) {
        _front_sent += left;
        break;
      }
      left -= rest;
      _spans.pop_front();
      _front_sent = 0;
    }
  }
  return 0;
}

}  // namespace pyloop::rt
