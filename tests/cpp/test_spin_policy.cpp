// SpinPolicy: how long the loop polls before it parks.
#include <unistd.h>

#include <cstdlib>

#include "check.hpp"
#include "pyloop/rt/spin_policy.hpp"

using pyloop::rt::SpinPolicy;

static constexpr double max_window = 100e-6;

TEST(spin_window_starts_at_its_maximum_and_a_zero_maximum_never_spins) {
  CHECK(SpinPolicy(max_window).window() == max_window);
  SpinPolicy off(0.0);
  CHECK(!off.enabled());
  for (double waited : {0.0, 1e-6, 1.0}) {
    off.waited(waited);
    CHECK(off.window() == 0.0);
  }
}

TEST(spin_window_halves_to_zero_while_the_loop_idles) {
  SpinPolicy policy(max_window);
  double expected[] = {50e-6, 25e-6, 12.5e-6, 0.0, 0.0};
  for (double window : expected) {
    policy.waited(0.5);  // longer than the maximum: no window would have caught it
    CHECK(policy.window() == window);
  }
  CHECK(policy.enabled());
}

TEST(spin_window_grows_back_when_events_come_just_after_it) {
  SpinPolicy policy(max_window);
  for (int i = 0; i < 4; ++i) policy.waited(1.0);
  CHECK(policy.window() == 0.0);
  double expected[] = {10e-6, 20e-6, 40e-6, 80e-6, max_window, max_window};
  for (double window : expected) {
    policy.waited(60e-6);  // within the maximum: a longer window would have caught it
    CHECK(policy.window() == window);
  }
}

TEST(spin_maximum_comes_from_the_environment) {
  setenv("PYLOOP_SPIN_US", "250", 1);
  CHECK(SpinPolicy::from_environment().window() == 250e-6);
  setenv("PYLOOP_SPIN_US", "0", 1);
  CHECK(!SpinPolicy::from_environment().enabled());
  // Not a count of microseconds in range: the machine's default, with a warning.
  double machine_default = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 100e-6 : 0.0;
  for (const char* bad : {"-1", "fast", "10001", "5us"}) {
    setenv("PYLOOP_SPIN_US", bad, 1);
    CHECK(SpinPolicy::from_environment().window() == machine_default);
  }
  unsetenv("PYLOOP_SPIN_US");
  CHECK(SpinPolicy::from_environment().window() == machine_default);
}
