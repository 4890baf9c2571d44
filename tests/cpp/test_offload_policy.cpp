// OffloadPolicy: when a loop hands its streams' I/O to the I/O threads.
#include <cstddef>

#include "check.hpp"
#include "pyloop/rt/offload_policy.hpp"

using pyloop::rt::OffloadPolicy;

namespace {
// Feeds `iterations` iterations of `events` each; returns how many switched.
int feed(OffloadPolicy& policy, std::size_t iterations, std::size_t events) {
  int switched = 0;
  for (std::size_t i = 0; i < iterations; ++i) switched += policy.iteration(events);
  return switched;
}
}  // namespace

TEST(offload_policy_offloads_a_busy_loop_after_one_window) {
  OffloadPolicy policy(OffloadPolicy::Mode::automatic);
  CHECK(feed(policy, OffloadPolicy::window - 1, 8) == 0);
  CHECK(!policy.offloaded());
  CHECK(policy.iteration(8));
  CHECK(policy.offloaded());
  CHECK(policy.switches() == 1);
}

TEST(offload_policy_keeps_a_loop_with_one_event_per_iteration_direct) {
  OffloadPolicy policy(OffloadPolicy::Mode::automatic);
  CHECK(feed(policy, 10 * OffloadPolicy::window, 1) == 0);
  CHECK(!policy.offloaded());
}

TEST(offload_policy_takes_the_io_back_only_below_the_lower_mark) {
  OffloadPolicy policy(OffloadPolicy::Mode::automatic);
  feed(policy, OffloadPolicy::window, 8);
  CHECK(policy.offloaded());
  // Between the two marks nothing changes, either way.
  CHECK(feed(policy, 4 * OffloadPolicy::window, 2) == 0);
  CHECK(policy.offloaded());
  CHECK(feed(policy, OffloadPolicy::window, 1) == 1);
  CHECK(!policy.offloaded());
  CHECK(feed(policy, 4 * OffloadPolicy::window, 3) == 0);
  CHECK(!policy.offloaded());
  CHECK(policy.switches() == 2);
}

TEST(offload_policy_always_and_never_switch_once_or_not_at_all) {
  OffloadPolicy always(OffloadPolicy::Mode::always);
  CHECK(always.iteration(0));
  CHECK(always.offloaded());
  CHECK(feed(always, 4 * OffloadPolicy::window, 0) == 0);
  OffloadPolicy never(OffloadPolicy::Mode::never);
  CHECK(feed(never, 4 * OffloadPolicy::window, 100) == 0);
  CHECK(!never.offloaded());
}
