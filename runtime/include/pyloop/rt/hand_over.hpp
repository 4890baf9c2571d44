// hand_over_by_key: hands a batch of (key, item) pairs over in one bulk call
// per key, each key's items in the order they were batched. An I/O thread
// hands its reads and reports to each loop's inbox so, and a loop its
// submissions to each I/O thread.
//
// Threading: the caller's; `batch` and `run` are its own scratch vectors
// (kept between calls, so a warm hand-over allocates nothing).
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace pyloop::rt {

template <class Key, class Item, class HandOver>
void hand_over_by_key(std::vector<std::pair<Key, Item>>& batch, std::vector<Item>& run, HandOver&& hand_over) {
  std::stable_sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < batch.size();) {
    Key key = batch[i].first;
    run.clear();
    for (; i < batch.size() && batch[i].first == key; ++i) run.push_back(batch[i].second);
    hand_over(key, run.data(), run.size());
  }
  batch.clear();
}

}  // namespace pyloop::rt
