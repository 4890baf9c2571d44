#include "pyloop/rt/spin_policy.hpp"

#include <unistd.h>

#include <cstdlib>

#include "pyloop/rt/log.hpp"

namespace pyloop::rt {

namespace {

constexpr long default_max_us = 100;
// A longer spin is never cheaper than the wake-up it saves.
constexpr long limit_us = 10'000;

long default_us() { return sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? default_max_us : 0; }

long configured_us() {
  if (const char* text = std::getenv("PYLOOP_SPIN_US"); text && *text) {
    char* end = nullptr;
    long us = std::strtol(text, &end, 10);
    if (*end == '\0' && us >= 0 && us <= limit_us) return us;
    log::get("loop")->warn("PYLOOP_SPIN_US={} is not a count of microseconds from 0 to {}; using the default",
                           text, limit_us);
  }
  return default_us();
}

}  // namespace

SpinPolicy SpinPolicy::from_environment() { return SpinPolicy(static_cast<double>(configured_us()) / 1e6); }

}  // namespace pyloop::rt
