#include "pyloop/rt/parker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace pyloop::rt {

namespace {
// The eventfd's token; fds are never this large.
constexpr std::uint64_t wake_token = ~std::uint64_t{0};
}  // namespace

Parker::Parker() : _reactor(make_epoll_reactor()) {
  _event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (_event_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  if (int err = _reactor->add(_event_fd, readable, wake_token)) {
    close(_event_fd);
    throw std::system_error(err, std::generic_category(), "epoll_ctl");
  }
}

Parker::~Parker() { release(); }

void Parker::release() noexcept {
  if (_event_fd < 0) return;
  _parked.store(false, std::memory_order_seq_cst);
  // Acquire: the waited-for caller's write(2) happens before the close below.
  while (_unparking.load(std::memory_order_acquire) != 0) sched_yield();
  close(_event_fd);
  _event_fd = -1;
  _reactor.reset();  // closes the epoll fd
}

int Parker::watch(int fd, std::uint32_t interest, std::uint64_t token) noexcept {
  if (!_reactor) return EBADF;  // released
  // The kernel refuses to modify an exclusive registration (EINVAL), in
  // either direction: those are replaced.
  int err = (interest & exclusive) ? EINVAL : _reactor->modify(fd, interest, token);
  if (err == EINVAL) {
    err = _reactor->remove(fd);
    if (err == 0 || err == ENOENT) err = _reactor->add(fd, interest, token);
  } else if (err == ENOENT) {
    // Not registered yet, or the kernel dropped it when an earlier fd with
    // this number was closed.
    err = _reactor->add(fd, interest, token);
  }
  return err;
}

void Parker::unwatch(int fd) noexcept {
  if (!_reactor) return;  // released: nothing is watched
  // EBADF/ENOENT: the fd was closed first, which already unregistered it.
  [[maybe_unused]] int err = _reactor->remove(fd);
}

int Parker::wait(double timeout, std::span<ReadyEvent> ready) noexcept {
  if (!_reactor) return -EBADF;  // released
  int n = _reactor->wait(ready, timeout);
  _waits.store(_waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (n == 0) _empty_waits.store(_empty_waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (n <= 0) return n;
  // Drop the wake-up from the results, resetting the eventfd.
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (ready[i].token == wake_token) {
      std::uint64_t value;
      // EAGAIN means another reader got there first, which is fine.
      [[maybe_unused]] ssize_t r = read(_event_fd, &value, sizeof value);
    } else {
      ready[kept++] = ready[i];
    }
  }
  return kept;
}

void Parker::signal() noexcept {
  _wakes.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t one = 1;
  // Fails only if the counter would overflow, i.e. it is already signalled.
  [[maybe_unused]] ssize_t r = write(_event_fd, &one, sizeof one);
}

}  // namespace pyloop::rt
