// A loop's inbox for native results: work done off the loop thread (on the
// Executor today, on I/O threads later) posts a Completion here, and the loop
// thread drains them in bulk each iteration, waking up for them if parked.
//
// Threading: post() from any thread; drain() on the loop thread only.
// Ownership: shared (std::shared_ptr) between the loop and every task that
// will post to it, so a task that finishes after its loop is gone posts into
// an inbox nobody drains, and the completion is freed with the inbox. For
// that reason a Completion holds plain C++ data only, never a PyObject*: the
// loop keeps what a completion is for (a future) in its own table, by id.
#pragma once

#include <cstdint>
#include <memory>

#include "pyloop/rt/parker.hpp"
#include "pyloop/rt/remote_queue.hpp"

namespace pyloop::rt {

struct Completion {
  virtual ~Completion() = default;
  std::uint64_t id = 0;
};

class Inbox {
 public:
  Parker parker;

  void post(std::unique_ptr<Completion> completion) { _completions.push(completion.release()); }

  [[nodiscard]] bool empty() const noexcept { return _completions.empty(); }

  // Loop thread only: hands each completion to sink, oldest first per producer.
  template <class Sink>
  void drain(Sink&& sink) {
    _completions.drain([&](Completion* c) { sink(std::unique_ptr<Completion>(c)); });
  }

  ~Inbox() {
    drain([](std::unique_ptr<Completion>) {});
  }

 private:
  // Raw pointers inside the queue; ownership is taken back in drain().
  RemoteQueue<Completion*> _completions{parker};
};

}  // namespace pyloop::rt
