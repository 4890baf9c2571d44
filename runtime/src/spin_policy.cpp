#include "pyloop/rt/spin_policy.hpp"

#include <unistd.h>

#include "pyloop/rt/env.hpp"

namespace pyloop::rt {

namespace {

constexpr long default_max_us = 100;
// A longer spin is never cheaper than the wake-up it saves.
constexpr long limit_us = 10'000;

long default_us() { return sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? default_max_us : 0; }

}  // namespace

SpinPolicy SpinPolicy::from_environment() {
  long us = env_count("PYLOOP_SPIN_US", limit_us, default_us(), "loop", "count of microseconds");
  return SpinPolicy(static_cast<double>(us) / 1e6);
}

}  // namespace pyloop::rt
