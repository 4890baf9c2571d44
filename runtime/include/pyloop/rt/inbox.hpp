// A loop's inbox for native results: work done off the loop thread (on the
// Executor, on I/O threads) posts a Completion here, and the loop thread
// drains them in bulk each iteration, waking up for them if parked.
//
// Threading: post() and post_bulk() from any thread; drain() on the loop
// thread only. Order holds per posting thread.
// Ownership: shared (std::shared_ptr) between the loop and every task that
// will post to it, so a task that finishes after its loop is gone posts into
// an inbox nobody drains, and the completion is released with the inbox. For
// that reason a Completion holds plain C++ data only, never a PyObject*: the
// loop keeps what a completion is for (a future, a transport) in its own
// table, by id. (A ReadChunk may carry a Loan from `supply`, whose owner is
// the loop's object; the I/O threads hold it only as an opaque token, and a
// chunk released unread lends it back.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "pyloop/rt/buffer_supply.hpp"
#include "pyloop/rt/parker.hpp"
#include "pyloop/rt/remote_queue.hpp"

namespace pyloop::rt {

struct Completion {
  virtual ~Completion() = default;
  // Frees the completion; pooled kinds go back to their pool instead.
  virtual void release() noexcept { delete this; }
  std::uint64_t id = 0;
};

struct ReleaseCompletion {
  void operator()(Completion* c) const noexcept { c->release(); }
};
using CompletionPtr = std::unique_ptr<Completion, ReleaseCompletion>;

class Inbox {
 public:
  Parker parker;
  // Buffers the loop lends the I/O threads that read its sockets.
  BufferSupply supply;

  void post(std::unique_ptr<Completion> completion) { _completions.push(completion.release()); }

  // Any thread. Takes ownership of completions[0..count), handed over as one
  // batch with at most one wake-up.
  void post_bulk(Completion** completions, std::size_t count) { _completions.push_bulk(completions, count); }

  [[nodiscard]] bool empty() const noexcept { return _completions.empty(); }

  // Loop thread only: hands each completion to sink, oldest first per producer.
  template <class Sink>
  void drain(Sink&& sink) {
    _completions.drain([&](Completion* c) { sink(CompletionPtr(c)); });
  }

  ~Inbox() {
    drain([](CompletionPtr) {});
  }

 private:
  // Raw pointers inside the queue; ownership is taken back in drain().
  RemoteQueue<Completion*> _completions{parker};
};

}  // namespace pyloop::rt
