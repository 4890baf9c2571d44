// When a loop hands its connections' socket work to the I/O threads.
//
// A loop does the I/O of its connections itself while it has idle time: a
// request at concurrency 1 then costs one wake-up and no hand-off (DESIGN.md
// lesson 6). Under load, the same work (recv, send and waiting on the
// sockets) is the kernel's part of every request, and it is most of the
// loop thread's CPU on loopback; the loop then "offloads": its I/O threads
// read every connection, send every write, and the loop waits on its inbox
// only (io_thread.hpp). The switch is made by how busy the loop is: over a
// window of `window` iterations, the I/O events it handled per iteration
// (ready fds, reads and write reports from its inbox). At or above
// `enter_events` it offloads; offloaded, below `leave_events` it takes the
// I/O back. The gap between the two keeps a loop at the border from
// switching back and forth (docs/offloading.md has the measurements).
//
// PYLOOP_OFFLOAD: "auto" (the default), "always" (offloaded from the first
// iteration: for tests and comparisons) or "never". It matters only where
// a loop has I/O threads (PYLOOP_IO_THREADS).
//
// Threading: one owner (the loop thread); no synchronisation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyloop::rt {

class OffloadPolicy {
 public:
  enum class Mode : std::uint8_t { never, automatic, always };
  static constexpr std::size_t window = 64;
  static constexpr double enter_events = 4.0;
  static constexpr double leave_events = 1.5;

  explicit OffloadPolicy(Mode mode) noexcept : _mode(mode) {}
  // PYLOOP_OFFLOAD, or "auto".
  static OffloadPolicy from_environment();

  [[nodiscard]] Mode mode() const noexcept { return _mode; }
  [[nodiscard]] bool offloaded() const noexcept { return _offloaded; }
  // How many times the loop switched (either way).
  [[nodiscard]] std::uint64_t switches() const noexcept { return _switches; }

  // An iteration handled `events` I/O events. True when the loop should
  // switch now (offloaded() already tells the new mode).
  bool iteration(std::size_t events) noexcept {
    if (_mode != Mode::automatic) {
      bool want = _mode == Mode::always;
      if (want == _offloaded) return false;
      return flip();
    }
    _events += events;
    if (++_iterations < window) return false;
    double per_iteration = static_cast<double>(_events) / static_cast<double>(_iterations);
    _events = _iterations = 0;
    if (_offloaded ? per_iteration < leave_events : per_iteration >= enter_events) return flip();
    return false;
  }

 private:
  bool flip() noexcept {
    _offloaded = !_offloaded;
    ++_switches;
    return true;
  }

  Mode _mode;
  bool _offloaded = false;
  std::size_t _events = 0;
  std::size_t _iterations = 0;
  std::uint64_t _switches = 0;
};

}  // namespace pyloop::rt
