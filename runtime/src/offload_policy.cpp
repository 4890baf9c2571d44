#include "pyloop/rt/offload_policy.hpp"

#include <cstdlib>
#include <string_view>

#include "pyloop/rt/log.hpp"

namespace pyloop::rt {

OffloadPolicy OffloadPolicy::from_environment() {
  const char* value = std::getenv("PYLOOP_OFFLOAD");
  if (!value || !*value) return OffloadPolicy(Mode::automatic);
  std::string_view text(value);
  if (text == "auto") return OffloadPolicy(Mode::automatic);
  if (text == "always") return OffloadPolicy(Mode::always);
  if (text == "never") return OffloadPolicy(Mode::never);
  log::get("loop")->warn("PYLOOP_OFFLOAD={} is not auto, always or never; using auto", text);
  return OffloadPolicy(Mode::automatic);
}

}  // namespace pyloop::rt
