#include "pyloop/rt/write_queue.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

namespace pyloop::rt {

namespace {
// Spans per sendmsg(): enough to fill a socket buffer with small writes.
constexpr std::size_t max_iov = 64;
// Bytes per sendfile(): what the kernel moves in one call at most anyway.
constexpr std::size_t max_file_chunk = std::size_t{1} << 30;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }
}  // namespace

int WriteQueue::send(int fd, WriteReport& report) noexcept {
  while (!_spans.empty()) {
    const Span& front = _spans.front();
    int err = front.datagram ? send_datagram(fd, report)
              : front.data   ? send_memory(fd, report)
                             : send_file(fd, report);
    if (err) return err;
  }
  return 0;
}

int WriteQueue::send_memory(int fd, WriteReport& report) noexcept {
  iovec iov[max_iov];
  std::size_t count = 0;
  for (auto it = _spans.begin(); it != _spans.end() && it->data && !it->datagram && count < max_iov;
       ++it, ++count) {
    std::size_t skip = count == 0 ? _front_sent : 0;
    // sendmsg() only reads the spans; iovec has no const member.
    iov[count] = {const_cast<char*>(it->data + skip), it->length - skip};
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EINTR) return 0;
    if (would_block(errno)) return EAGAIN;
    int err = errno;
    clear(report);
    return err;
  }
  report.written += static_cast<std::size_t>(n);
  for (auto left = static_cast<std::size_t>(n); left > 0;) {
    std::size_t rest = _spans.front().length - _front_sent;
    if (left < rest) {
      _front_sent += left;
      break;
    }
    left -= rest;
    pop_front();
  }
  return 0;
}

int WriteQueue::send_datagram(int fd, WriteReport& report) noexcept {
  const Span& span = _spans.front();
  ssize_t n = span.to.length
                  ? sendto(fd, span.data, span.length, MSG_NOSIGNAL, span.to.sockaddr_ptr(), span.to.length)
                  : ::send(fd, span.data, span.length, MSG_NOSIGNAL);
  if (n < 0 && errno == EINTR) return 0;
  if (n < 0 && would_block(errno)) return EAGAIN;
  ++report.datagrams;
  pop_front();
  if (n >= 0) return 0;
  report.datagram_error = errno;
  return EAGAIN;
}

int WriteQueue::send_file(int fd, WriteReport& report) noexcept {
  const Span& span = _spans.front();
  off_t offset = span.offset + static_cast<off_t>(_front_sent);
  ssize_t n = sendfile(fd, span.file_fd, &offset, std::min(span.length - _front_sent, max_file_chunk));
  if (n < 0 && errno == EINTR) return 0;
  if (n < 0 && would_block(errno)) return EAGAIN;
  if (n > 0) {
    report.file_sent += static_cast<std::size_t>(n);
    _front_sent += static_cast<std::size_t>(n);
    if (_front_sent < span.length) return 0;
  }
  // Sent in full, the file's end (0), or a failure, which may be the file's
  // (the socket then says so on the next send) as asyncio leaves it.
  if (n < 0) report.file_error = errno;
  report.file_done = true;
  pop_front();
  return 0;
}

bool WriteQueue::stop_file() noexcept {
  auto is_file = [](const Span& s) { return s.data == nullptr && !s.datagram; };
  if (std::none_of(_spans.begin(), _spans.end(), is_file)) return false;
  if (is_file(_spans.front())) _front_sent = 0;
  std::erase_if(_spans, is_file);
  return true;
}

void WriteQueue::clear(WriteReport& report) noexcept {
  if (std::any_of(_spans.begin(), _spans.end(),
                  [](const Span& s) { return s.data == nullptr && !s.datagram; }))
    report.file_done = true;
  _spans.clear();
  _front_sent = 0;
}

}  // namespace pyloop::rt
