#include "tbb_threads.hpp"

#include <oneapi/tbb/global_control.h>

namespace pyloop::rt {

void reserve_tbb_threads() {
  // Both arenas at full use, plus the thread that submits. Leaked on
  // purpose: a limit that ended at exit could shrink the pools under
  // tasks still running.
  static auto* limit = new tbb::global_control(tbb::global_control::max_allowed_parallelism,
                                               executor_pool_size() + work_pool_size() + 1);
  (void)limit;
}

}  // namespace pyloop::rt
