// A fixed-size ring of one user's most recent job-level events, indexed by seq.
// It serves two readers: `resume` (replay everything after a seq the client
// already has) and every live watcher, whose outgoing queue is only a cursor
// into this ring. The ring is therefore the one place job-level events are
// buffered, and its capacity bounds memory however many watchers lag behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "events/protocol_messages.hpp"

namespace litchi::events {

struct RingEntry {
    std::uint64_t seq = 0;
    MessageKind kind = MessageKind::progress;
    MessageText text;
};

class ReplayRing {
  public:
    explicit ReplayRing(std::size_t capacity);

    // `entry.seq` must be one more than the last pushed seq (the hub's counter
    // guarantees it); the oldest entry is overwritten when full.
    void push(RingEntry entry);

    bool empty() const { return count_ == 0; }
    std::size_t size() const { return count_; }
    std::size_t capacity() const { return slots_.size(); }
    // Valid only when not empty.
    std::uint64_t first_seq() const { return last_seq_ - count_ + 1; }
    std::uint64_t last_seq() const { return last_seq_; }

    // The entry with this seq, or nullptr when it is not (or no longer) held.
    const RingEntry* find(std::uint64_t seq) const;

  private:
    std::vector<RingEntry> slots_;  // slot of seq s: s % capacity (seqs are contiguous)
    std::size_t count_ = 0;
    std::uint64_t last_seq_ = 0;
};

}  // namespace litchi::events
