#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <system_error>

#include "pyloop/rt/reactor.hpp"

namespace pyloop::rt {

namespace {

std::uint32_t to_epoll(std::uint32_t interest) {
  std::uint32_t ev = 0;
  if (interest & readable) ev |= EPOLLIN;
  if (interest & writable) ev |= EPOLLOUT;
  if (interest & exclusive) ev |= EPOLLEXCLUSIVE;
  if (interest & edge) ev |= EPOLLET;
  if (interest & oneshot) ev |= EPOLLONESHOT;
  if (interest & peer_closed) ev |= EPOLLRDHUP;
  return ev;
}

std::uint32_t from_epoll(std::uint32_t ev) {
  std::uint32_t ready = 0;
  if (ev & EPOLLIN) ready |= readable;
  if (ev & EPOLLOUT) ready |= writable;
  if (ev & (EPOLLHUP | EPOLLRDHUP)) ready |= ReadyEvent::hangup;
  if (ev & EPOLLERR) ready |= ReadyEvent::error;
  return ready;
}

class EpollReactor final : public Reactor {
 public:
  EpollReactor() : _fd(epoll_create1(EPOLL_CLOEXEC)) {
    if (_fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  }
  ~EpollReactor() override { close(_fd); }

  int add(int fd, std::uint32_t interest, std::uint64_t token) noexcept override {
    return ctl(EPOLL_CTL_ADD, fd, interest, token);
  }
  int modify(int fd, std::uint32_t interest, std::uint64_t token) noexcept override {
    return ctl(EPOLL_CTL_MOD, fd, interest, token);
  }
  int remove(int fd) noexcept override {
    return epoll_ctl(_fd, EPOLL_CTL_DEL, fd, nullptr) < 0 ? errno : 0;
  }

  [[nodiscard]] int pollable_fd() const noexcept override { return _fd; }

  int wait(std::span<ReadyEvent> out, double timeout) noexcept override {
    constexpr int batch = 256;
    epoll_event events[batch];
    int max = static_cast<int>(std::min<std::size_t>(out.size(), batch));
    int n = wait_for(events, max, timeout);
    if (n < 0) return -errno;
    for (int i = 0; i < n; ++i) out[i] = ReadyEvent{events[i].data.u64, from_epoll(events[i].events)};
    return n;
  }

 private:
  int wait_for(epoll_event* events, int max, double timeout) noexcept {
    if (_has_pwait2 && timeout > 0) {
      // epoll_pwait2 takes a nanosecond timeout, so a timer's wait ends at
      // its real deadline rather than at the next whole millisecond.
      double whole = std::floor(timeout);
      timespec ts{static_cast<time_t>(whole), static_cast<long>((timeout - whole) * 1e9)};
      int n = epoll_pwait2(_fd, events, max, &ts, nullptr);
      if (n >= 0 || errno != ENOSYS) return n;
      _has_pwait2 = false;  // kernels before 5.11
    }
    // Round up: waking a little late is harmless, waking early spins.
    int ms = timeout < 0 ? -1 : static_cast<int>(std::ceil(timeout * 1e3));
    return epoll_wait(_fd, events, max, ms);
  }

  int ctl(int op, int fd, std::uint32_t interest, std::uint64_t token) noexcept {
    epoll_event ev{};
    ev.events = to_epoll(interest);
    ev.data.u64 = token;
    return epoll_ctl(_fd, op, fd, &ev) < 0 ? errno : 0;
  }

  int _fd;
  bool _has_pwait2 = true;
};

}  // namespace

std::unique_ptr<Reactor> make_epoll_reactor() { return std::make_unique<EpollReactor>(); }

}  // namespace pyloop::rt
