// Replay ring: contiguous seqs map to slots by modulo, so push and find are O(1)
// and no per-event allocation happens beyond the shared message text.
#include "events/replay_ring.hpp"

#include <stdexcept>
#include <utility>

namespace litchi::events {

ReplayRing::ReplayRing(std::size_t capacity) : slots_(capacity) {
    if (capacity == 0) throw std::invalid_argument("replay ring capacity must be positive");
}

void ReplayRing::push(RingEntry entry) {
    if (count_ > 0 && entry.seq != last_seq_ + 1) {
        throw std::logic_error("replay ring: seq must rise by one");
    }
    last_seq_ = entry.seq;
    slots_[entry.seq % slots_.size()] = std::move(entry);
    if (count_ < slots_.size()) ++count_;
}

const RingEntry* ReplayRing::find(std::uint64_t seq) const {
    if (count_ == 0 || seq > last_seq_ || seq < first_seq()) return nullptr;
    return &slots_[seq % slots_.size()];
}

}  // namespace litchi::events
