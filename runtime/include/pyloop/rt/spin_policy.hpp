// How long the loop thread polls its fds before it parks in the kernel.
//
// Waking a parked thread from another core costs tens of microseconds on a
// VM (the kernel's wake-up, the scheduler, often the hypervisor), which is
// most of an echo's round trip at one connection. When the next event comes
// within a few tens of microseconds, polling for it is cheaper than sleeping
// and being woken. When it comes later, the polling is wasted CPU, so the
// window adapts the way KVM's halt polling does, by how long the thread
// waited in all (spin and park) when the spin found nothing: within the
// maximum, a longer window would have caught the event, so it doubles, up to
// the maximum; beyond it, no window would have, so it halves, down to zero.
// A spin that found work keeps it. An idle or sporadically busy loop, or one
// whose events come further apart than the maximum, so converges to parking
// at once.
//
// The maximum comes from PYLOOP_SPIN_US (microseconds, 0 turns spinning
// off); by default 100 where the machine has two cores or more online, and 0
// on one core, where the event can only come from a thread that needs the
// core the spinner holds. Online cores, not the process's affinity: a loop
// pinned to one core still gets its events from peers on the others, and the
// spin yields that core to any thread of its own waiting for it.
//
// Threading: one owner (the loop thread); no synchronisation.
#pragma once

namespace pyloop::rt {

class SpinPolicy {
 public:
  // The smallest window a grown one starts from; halving below it stops spinning.
  static constexpr double base_seconds = 10e-6;

  explicit SpinPolicy(double max_seconds) noexcept : _max(max_seconds), _window(max_seconds) {}
  // PYLOOP_SPIN_US, or the default for this machine.
  static SpinPolicy from_environment();

  [[nodiscard]] bool enabled() const noexcept { return _max > 0.0; }
  // How long to poll before parking now (0: park at once).
  [[nodiscard]] double window() const noexcept { return _window; }

  // The spin found nothing and the thread parked: `seconds` from the start
  // of the spin to the end of the park.
  void waited(double seconds) noexcept {
    if (seconds <= _max) {
      _window = _window < base_seconds ? base_seconds : _window * 2;
      if (_window > _max) _window = _max;
    } else {
      _window /= 2;
      if (_window < base_seconds) _window = 0.0;
    }
  }

 private:
  double _max;
  double _window;
};

}  // namespace pyloop::rt
