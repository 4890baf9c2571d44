#include "pyloop/rt/log.hpp"

#include <cstdlib>
#include <mutex>

#include <spdlog/cfg/helpers.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace pyloop::rt::log {

namespace {

std::once_flag env_applied;

void apply_env_once() {
  std::call_once(env_applied, [] {
    // Quiet unless asked: an event loop should not print on its own.
    spdlog::set_level(spdlog::level::warn);
    if (const char* spec = std::getenv("PYLOOP_LOG")) configure(spec);
  });
}

}  // namespace

std::shared_ptr<spdlog::logger> get(std::string_view subsystem) {
  apply_env_once();
  std::string name = "pyloop." + std::string(subsystem);
  if (auto existing = spdlog::get(name)) return existing;
  try {
    return spdlog::stderr_color_mt(name);
  } catch (const spdlog::spdlog_ex&) {
    // Another thread registered the same name between get() and here.
    return spdlog::get(name);
  }
}

void configure(const std::string& spec) {
  spdlog::cfg::helpers::load_levels(spec);
}

}  // namespace pyloop::rt::log
