// The loop's timer heap: a binary min-heap ordered by (deadline, insertion order).
//
// Threading: owned by one thread (the loop thread); no method is thread-safe.
// Ties on the deadline break by a sequence number, so timers due at the same
// moment run in the order they were scheduled (a plain heap would not keep it).
// Cancelled timers are removed lazily by the owner: it pops them off the top,
// or compacts the whole heap with remove_if when they dominate it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace pyloop::rt {

template <class Payload>
class TimerHeap {
 public:
  struct Entry {
    double when;
    std::uint64_t seq;
    Payload payload;
  };

  [[nodiscard]] bool empty() const noexcept { return _entries.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return _entries.size(); }

  // Precondition: !empty().
  [[nodiscard]] const Entry& top() const noexcept { return _entries.front(); }

  void push(double when, Payload payload) {
    _entries.push_back(Entry{when, _next_seq++, std::move(payload)});
    std::push_heap(_entries.begin(), _entries.end(), later);
  }

  // Precondition: !empty().
  Payload pop() {
    std::pop_heap(_entries.begin(), _entries.end(), later);
    Payload payload = std::move(_entries.back().payload);
    _entries.pop_back();
    return payload;
  }

  // Visits every entry in heap (not deadline) order.
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& e : _entries) f(e);
  }

  // Removes every entry whose payload matches pred, handing each to sink first.
  template <class Pred, class Sink>
  void remove_if(Pred pred, Sink sink) {
    auto end = std::partition(_entries.begin(), _entries.end(),
                              [&](const Entry& e) { return !pred(e.payload); });
    for (auto it = end; it != _entries.end(); ++it) sink(std::move(it->payload));
    _entries.erase(end, _entries.end());
    std::make_heap(_entries.begin(), _entries.end(), later);
  }

  // Hands every payload to sink and empties the heap.
  template <class Sink>
  void clear(Sink sink) {
    std::vector<Entry> entries = std::exchange(_entries, {});
    for (Entry& e : entries) sink(std::move(e.payload));
  }

 private:
  // std heap algorithms build a max-heap; "later" as the ordering puts the
  // earliest (deadline, seq) on top.
  static bool later(const Entry& a, const Entry& b) noexcept {
    return a.when > b.when || (a.when == b.when && a.seq > b.seq);
  }

  std::vector<Entry> _entries;
  std::uint64_t _next_seq = 0;
};

}  // namespace pyloop::rt
