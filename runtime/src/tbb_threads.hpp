// How many threads oneTBB may run for pyloop's two arenas together: the
// Executor's (blocking lookups) and the WorkPool's (the default executor).
// oneTBB shares one set of workers among its arenas and caps them at
// cores - 1 unless told otherwise, which would leave either arena short.
//
// Threading: reserve_tbb_threads() is safe from any thread; the limit is
// set once, for the process's lifetime.
#pragma once

#include <cstddef>

namespace pyloop::rt {

std::size_t executor_pool_size();
std::size_t work_pool_size();
void reserve_tbb_threads();

}  // namespace pyloop::rt
