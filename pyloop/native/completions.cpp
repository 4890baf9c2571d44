// The drain of the loop's inbox into Python calls: reads an I/O thread made
// go to their transport's protocol, its reports of writes sent to the
// transport, resolver results and the default executor's outcomes to their
// futures.
//
// Threading: the loop thread's. It runs right after the loop's poll. A
// stream's reads and write reports are not handed over here but scheduled
// in the ready queue, where asyncio would run the socket's callbacks: after
// those already queued. A read callback the poll queued before them hands
// over the held reads before reading itself (begin_read), so bytes keep
// their order.
#include "loop_core.hpp"
#include "loop_state.hpp"
#include "transport_core.hpp"

namespace pyloop::py {

int deliver_completions(LoopCoreObject* self) {
  LoopState& s = *self->state;
  int rc = 0;
  s.inbox->drain([&](rt::CompletionPtr c) {
    // After an exception (SystemExit, KeyboardInterrupt) the loop stops:
    // resolver results are dropped.
    if (s.streams.contains(c->id)) {
      // A stream's completions are its reads and its write reports.
      ++s.io_events;
      bool report = dynamic_cast<rt::WriteReport*>(c.get()) != nullptr;
      int r = report ? deliver_write_report(self, std::move(c)) : deliver_chunk(self, std::move(c));
      if (rc == 0) rc = r;
    } else if (auto* call = dynamic_cast<PythonCallDone*>(c.get())) {
      if (rc == 0) rc = settle_python_call(self, *call);
    } else if (rc == 0) {
      rc = settle_completion(self, std::move(c));
    }
  });
  return rc;
}

}  // namespace pyloop::py
