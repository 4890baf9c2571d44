// The readiness backend an I/O thread drives: register fds with an interest
// set and a token, then wait for ready ones. epoll (make_epoll_reactor); an
// io_uring echo server spent no less CPU per message than an epoll one here
// (docs/architecture.md, "Why epoll, not io_uring"), so there is no io_uring backend yet.
//
// Threading: a reactor belongs to the thread that calls wait(). add, modify
// and remove are safe from other threads too (the kernel serialises them),
// but the I/O runtime makes them on the owning thread only, so that a fd's
// registration and its events are never reordered.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

namespace pyloop::rt {

enum Interest : std::uint32_t {
  readable = 1u << 0,
  writable = 1u << 1,
  // Registration flags, not events. `exclusive`: when the fd turns ready,
  // the kernel wakes only one of the reactors registered with it this way,
  // the first-registered one that has a thread waiting (see io_thread.hpp
  // for how pyloop uses that). Such a registration cannot be modified, only
  // removed and added again (at the back of the line). `edge`: reported
  // once per readiness change instead of for as long as it lasts.
  exclusive = 1u << 4,
  edge = 1u << 5,
  // Reported once, then silent until the registration is modified again.
  oneshot = 1u << 6,
  // Report the peer's shutdown (as ReadyEvent::hangup) along with readable:
  // an edge-triggered reader then knows a short read left the EOF behind.
  // Not with `exclusive` (the kernel refuses the pair).
  peer_closed = 1u << 7,
};

struct ReadyEvent {
  std::uint64_t token;
  std::uint32_t ready;  // Interest bits, plus hangup/error below
  static constexpr std::uint32_t hangup = 1u << 2;
  static constexpr std::uint32_t error = 1u << 3;
};

class Reactor {
 public:
  virtual ~Reactor() = default;

  // Each returns 0 or an errno value; none throws.
  virtual int add(int fd, std::uint32_t interest, std::uint64_t token) noexcept = 0;
  virtual int modify(int fd, std::uint32_t interest, std::uint64_t token) noexcept = 0;
  virtual int remove(int fd) noexcept = 0;

  // Fills `out` with ready fds; waits up to timeout seconds (negative: no
  // limit). Returns the count, or -errno (-EINTR on a signal).
  virtual int wait(std::span<ReadyEvent> out, double timeout) noexcept = 0;

  // A fd that is readable while this reactor has ready fds (epoll's own),
  // so that another reactor can wait for this one among its fds.
  [[nodiscard]] virtual int pollable_fd() const noexcept = 0;
};

// Level-triggered epoll: a fd that stays ready is reported again, which is
// what add_reader/add_writer semantics need. Throws std::system_error.
std::unique_ptr<Reactor> make_epoll_reactor();

}  // namespace pyloop::rt
