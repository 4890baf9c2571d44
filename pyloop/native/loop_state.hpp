// The C++ part of a LoopCore: the queues that hold scheduled handles.
//
// Threading: the loop thread's, except `remote` (any thread pushes), `inbox`
// (native work posts to it from other threads) and
// `timer_cancelled_count` (TimerHandle.cancel may run on any thread).
// Every queue, and `watchers`, holds a strong reference to each handle in it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "handle.hpp"
#include "python_calls.hpp"
#include "transport_core.hpp"
#include "pyloop/rt/log.hpp"
#include "pyloop/rt/inbox.hpp"
#include "pyloop/rt/offload_policy.hpp"
#include "pyloop/rt/parker.hpp"
#include "pyloop/rt/remote_queue.hpp"
#include "pyloop/rt/ring_queue.hpp"
#include "pyloop/rt/spin_policy.hpp"
#include "pyloop/rt/timer_heap.hpp"

namespace pyloop::py {

// The handles add_reader/add_writer registered for one fd.
struct FdWatchers {
  HandleObject* reader = nullptr;
  HandleObject* writer = nullptr;
  // LoopState::iteration when each was added: one that an iteration's
  // queued callbacks added misses that iteration's poll (run_loop.cpp).
  std::uint64_t reader_added = 0;
  std::uint64_t writer_added = 0;
  [[nodiscard]] std::uint32_t interest() const noexcept {
    return (reader ? rt::readable : 0u) | (writer ? rt::writable : 0u);
  }
};

struct LoopState {
  LoopState() : log(rt::log::get("loop")) { log->debug("loop state {} created", static_cast<void*>(this)); }
  ~LoopState() { log->debug("loop state {} destroyed", static_cast<void*>(this)); }
  LoopState(const LoopState&) = delete;
  LoopState& operator=(const LoopState&) = delete;

  std::shared_ptr<spdlog::logger> log;
  // Callbacks queued for the next iteration's start (call_soon and friends).
  rt::RingQueue<HandleObject*> ready;
  // This iteration's I/O: the callbacks of the fds its poll reported ready,
  // then its due timers (run_loop.cpp says why they are apart from `ready`).
  rt::RingQueue<HandleObject*> polled;
  rt::TimerHeap<TimerHandleObject*> timers;
  // Counts asyncio's iterations: each run_once, and one more where its poll
  // waits (run_loop.cpp). Timers and fd watchers remember the one that added them.
  std::uint64_t iteration = 0;
  // Shared with native work in flight (see inbox.hpp); its parker is the loop's.
  std::shared_ptr<rt::Inbox> inbox = std::make_shared<rt::Inbox>();
  rt::Parker& parker = inbox->parker;
  rt::RemoteQueue<HandleObject*> remote{inbox->parker};
  // Where the default executor's calls post their outcomes (python_calls.hpp).
  std::shared_ptr<CallSink> calls = std::make_shared<CallSink>(inbox);
  // Futures waiting for an inbox completion, by completion id.
  std::unordered_map<std::uint64_t, PyObject*> pending;
  std::uint64_t next_completion_id = 1;
  std::atomic<std::size_t> timer_cancelled_count{0};
  std::unordered_map<int, FdWatchers> watchers;
  // Socket transports an I/O thread reads too (transport_stream.cpp): their
  // links by stream id (ids come from next_completion_id) and by fd. A
  // transport removes its link before it goes.
  std::unordered_map<std::uint64_t, StreamLink*> streams;
  std::unordered_map<int, StreamLink*> stream_fds;
  // Links with writes to hand to their I/O thread at the end of this
  // iteration (transport_writes.cpp), and the batch that does it (which
  // collects sendfile submissions as they come).
  std::vector<StreamLink*> writes_due;
  // Links whose I/O thread registration waits for the loop's own turn at
  // the socket (fd_watch.cpp, rearm_after_poll).
  std::vector<StreamLink*> rearms_due;
  std::vector<std::pair<rt::IoThread*, rt::Submission>> write_batch;
  std::vector<rt::Submission> write_run;  // scratch for the hand-over
  rt::ReadyEvent ready_fds[256];
  // How long the loop polls before it parks (run_loop.cpp).
  rt::SpinPolicy spin = rt::SpinPolicy::from_environment();
  // Whether its streams' I/O is the I/O threads' alone now (offload.cpp),
  // and the I/O events of this iteration it goes by: ready fds, and the
  // reads and write reports of streams from the inbox.
  rt::OffloadPolicy offload = rt::OffloadPolicy::from_environment();
  std::size_t io_events = 0;

  // Work from other threads: call_soon_threadsafe handles or native results.
  [[nodiscard]] bool has_remote_work() const noexcept { return !remote.empty() || !inbox->empty(); }

  // Moves call_soon_threadsafe handles into the ready queue, in arrival order
  // per sending thread.
  void drain_remote() {
    remote.drain([this](HandleObject* h) { ready.push_back(h); });
  }
};

}  // namespace pyloop::py
