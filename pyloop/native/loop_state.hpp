// The C++ part of a LoopCore: the queues that hold scheduled handles.
//
// Threading: the loop thread's, except `remote` (any thread pushes) and
// `timer_cancelled_count` (TimerHandle.cancel may run on any thread).
// Every queue holds a strong reference to each handle in it.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include "handle.hpp"
#include "pyloop/rt/log.hpp"
#include "pyloop/rt/parker.hpp"
#include "pyloop/rt/remote_queue.hpp"
#include "pyloop/rt/ring_queue.hpp"
#include "pyloop/rt/timer_heap.hpp"

namespace pyloop::py {

struct LoopState {
  LoopState() : log(rt::log::get("loop")) { log->debug("loop state {} created", static_cast<void*>(this)); }
  ~LoopState() { log->debug("loop state {} destroyed", static_cast<void*>(this)); }
  LoopState(const LoopState&) = delete;
  LoopState& operator=(const LoopState&) = delete;

  std::shared_ptr<spdlog::logger> log;
  rt::RingQueue<HandleObject*> ready;
  rt::TimerHeap<TimerHandleObject*> timers;
  rt::Parker parker;
  rt::RemoteQueue<HandleObject*> remote{parker};
  std::atomic<std::size_t> timer_cancelled_count{0};

  // Moves call_soon_threadsafe handles into the ready queue, in arrival order
  // per sending thread.
  void drain_remote() {
    remote.drain([this](HandleObject* h) { ready.push_back(h); });
  }
};

}  // namespace pyloop::py
