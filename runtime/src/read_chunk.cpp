#include "pyloop/rt/read_chunk.hpp"

namespace pyloop::rt {

void ReadChunk::release() noexcept {
  return_loan();
  home.give_back(this);
}

BufferPool::~BufferPool() {
  reclaim(0);
  for (ReadChunk* chunk : _free) delete chunk;
}

ReadChunk* BufferPool::take() {
  if (_free.empty()) reclaim();
  if (_free.empty()) return new ReadChunk(*this);
  ReadChunk* chunk = _free.back();
  _free.pop_back();
  chunk->id = 0;
  chunk->length = 0;
  chunk->error = 0;
  chunk->consumed = 0;
  chunk->address_length = 0;
  return chunk;
}

void BufferPool::reclaim(std::size_t keep) {
  ReadChunk* batch[32];
  while (std::size_t n = _returned.try_dequeue_bulk(batch, 32)) {
    for (std::size_t i = 0; i < n; ++i) {
      if (_free.size() < keep) {
        _free.push_back(batch[i]);
      } else {
        delete batch[i];
      }
    }
  }
}

}  // namespace pyloop::rt
