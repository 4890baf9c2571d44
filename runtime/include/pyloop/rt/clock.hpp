// The loop's clock: CLOCK_MONOTONIC in seconds, the same clock as Python's
// time.monotonic(), so loop.time() and timers agree with code that reads either.
// Stateless and thread-safe.
#pragma once

#include <ctime>

namespace pyloop::rt {

inline double monotonic_seconds() noexcept {
  timespec ts;
  // CLOCK_MONOTONIC cannot fail on Linux for a valid timespec pointer.
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace pyloop::rt
