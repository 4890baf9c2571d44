#include "pyloop/rt/parker.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <system_error>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace pyloop::rt {

Parker::Parker() {
  _epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (_epoll_fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  _event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (_event_fd < 0) {
    int err = errno;
    close(_epoll_fd);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (epoll_ctl(_epoll_fd, EPOLL_CTL_ADD, _event_fd, &ev) < 0) {
    int err = errno;
    close(_event_fd);
    close(_epoll_fd);
    throw std::system_error(err, std::generic_category(), "epoll_ctl");
  }
}

Parker::~Parker() {
  close(_event_fd);
  close(_epoll_fd);
}

int Parker::wait(double timeout) noexcept {
  epoll_event ev;
  int n;
  if (_has_pwait2) {
    // epoll_pwait2 takes a nanosecond timeout, so the loop wakes at the real
    // deadline rather than at the next whole millisecond.
    timespec ts;
    timespec* tsp = nullptr;
    if (timeout >= 0) {
      double whole = std::floor(timeout);
      ts.tv_sec = static_cast<time_t>(whole);
      ts.tv_nsec = static_cast<long>((timeout - whole) * 1e9);
      tsp = &ts;
    }
    n = epoll_pwait2(_epoll_fd, &ev, 1, tsp, nullptr);
    if (n < 0 && errno == ENOSYS) {
      _has_pwait2 = false;  // kernels before 5.11
      return wait(timeout);
    }
  } else {
    // Round up: waking a little late is harmless, waking early spins.
    int ms = timeout < 0 ? -1 : static_cast<int>(std::ceil(timeout * 1e3));
    n = epoll_wait(_epoll_fd, &ev, 1, ms);
  }
  if (n < 0) return errno;
  if (n > 0) {
    std::uint64_t value;
    // Resets the eventfd; EAGAIN means another reader got there first, which is fine.
    [[maybe_unused]] ssize_t r = read(_event_fd, &value, sizeof value);
  }
  return 0;
}

void Parker::signal() noexcept {
  std::uint64_t one = 1;
  // Fails only if the counter would overflow, i.e. it is already signalled.
  [[maybe_unused]] ssize_t r = write(_event_fd, &one, sizeof one);
}

}  // namespace pyloop::rt
