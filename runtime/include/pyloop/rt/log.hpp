// Named spdlog loggers, one per subsystem ("loop", "io", ...), all named
// "pyloop.<subsystem>".
//
// Threading: get() and configure() are thread-safe (spdlog's registry locks);
// call get() once per object and keep the pointer, never per operation.
// Levels come from PYLOOP_LOG, in spdlog's syntax: "debug" sets every pyloop
// logger, "warn,pyloop.loop=trace" sets the default and one logger.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace pyloop::rt::log {

std::shared_ptr<spdlog::logger> get(std::string_view subsystem);

// Applies a level spec (PYLOOP_LOG syntax) to every existing and future logger.
void configure(const std::string& spec);

}  // namespace pyloop::rt::log
