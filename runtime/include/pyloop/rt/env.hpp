// Settings read from the environment.
//
// Threading: any thread (pyloop only reads its variables, never sets them).
#pragma once

#include <string_view>

namespace pyloop::rt {

// The whole number in environment variable `name` when it is one from 0 to
// `limit`; otherwise `fallback`, with a warning on `subsystem`'s logger when
// the variable is set to anything else ("NAME=text is not a <what> from 0 to
// <limit>; using the default").
long env_count(const char* name, long limit, long fallback, std::string_view subsystem,
               std::string_view what);

}  // namespace pyloop::rt
