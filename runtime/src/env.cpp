#include "pyloop/rt/env.hpp"

#include <cstdlib>

#include "pyloop/rt/log.hpp"

namespace pyloop::rt {

long env_count(const char* name, long limit, long fallback, std::string_view subsystem,
               std::string_view what) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  long n = std::strtol(text, &end, 10);
  if (*end == '\0' && n >= 0 && n <= limit) return n;
  log::get(subsystem)->warn("{}={} is not a {} from 0 to {}; using the default", name, text, what, limit);
  return fallback;
}

}  // namespace pyloop::rt
