#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <system_error>

#include "pyloop/rt/reactor.hpp"

namespace pyloop::rt {

namespace {

std::uint32_t to_epoll(std::uint32_t interest) {
  std::uint32_t ev = 0;
  if (interest & readable) ev |= EPOLLIN;
  if (interest & writable) ev |= EPOLLOUT;
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

  int wait(std::span<ReadyEvent> out, double timeout) noexcept override {
    constexpr int batch = 256;
    epoll_event events[batch];
    int max = static_cast<int>(std::min<std::size_t>(out.size(), batch));
    int ms = timeout < 0 ? -1 : static_cast<int>(std::ceil(timeout * 1e3));
    int n = epoll_wait(_fd, events, max, ms);
    if (n < 0) return -errno;
    for (int i = 0; i < n; ++i) out[i] = ReadyEvent{events[i].data.u64, from_epoll(events[i].events)};
    return n;
  }

 private:
  int ctl(int op, int fd, std::uint32_t interest, std::uint64_t token) noexcept {
    epoll_event ev{};
    ev.events = to_epoll(interest);
    ev.data.u64 = token;
    return epoll_ctl(_fd, op, fd, &ev) < 0 ? errno : 0;
  }

  int _fd;
};

}  // namespace

std::unique_ptr<Reactor> make_epoll_reactor() { return std::make_unique<EpollReactor>(); }

}  // namespace pyloop::rt
