// See url_list.hpp.
#include "jobs/url_list.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>

namespace litchi {
namespace {

std::string_view trim(std::string_view text) {
    constexpr std::string_view kSpace = " \t\r\n\f\v";
    auto begin = text.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    auto end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

// The kept lines seen so far, for the duplicate check: open addressing over
// indices into UrlList::lines, each slot with its line's hash so that a probe
// compares text only when the hashes match. A million-line body is a million
// lookups on the accept path; a node-based set spent as much there (one
// allocation per line, a pointer chase per probe, and freeing them all) as
// the admission of every URL.
class SeenLines {
  public:
    explicit SeenLines(std::size_t expected) {
        std::size_t capacity = 16;
        while (capacity < expected * 2) capacity *= 2;  // load <= 1/2
        allocate(capacity);
    }

    // True if `line` is new (then remembered as lines[index]).
    bool insert(std::string_view line, const std::vector<std::string_view>& lines,
                std::uint32_t index) {
        if ((count_ + 1) * 2 > capacity_) grow(lines);
        const std::size_t hash = std::hash<std::string_view>{}(line);
        const auto tag = static_cast<std::uint32_t>(hash >> 32);
        const std::size_t mask = capacity_ - 1;
        for (std::size_t at = hash & mask;; at = (at + 1) & mask) {
            Slot& slot = slots_[at];
            if (slot.index_plus_1 == 0) {
                slot = {tag, index + 1};
                ++count_;
                return true;
            }
            if (slot.tag == tag && lines[slot.index_plus_1 - 1] == line) return false;
        }
    }

  private:
    // 8 bytes a slot (a million lines: a 16 MiB table); zeroed = empty. The
    // slot keeps the hash's high half and the table is indexed by its low
    // bits, so growing re-hashes the lines themselves.
    struct Slot {
        std::uint32_t tag;
        std::uint32_t index_plus_1;
    };
    struct Free {
        void operator()(Slot* slots) const { std::free(slots); }
    };

    void allocate(std::size_t capacity) {
        // calloc: fresh pages come zeroed from the kernel, no second pass.
        slots_.reset(static_cast<Slot*>(std::calloc(capacity, sizeof(Slot))));
        if (!slots_) throw std::bad_alloc();
        capacity_ = capacity;
    }

    void grow(const std::vector<std::string_view>& lines) {
        auto old = std::move(slots_);
        const std::size_t old_capacity = capacity_;
        allocate(old_capacity * 2);
        const std::size_t mask = capacity_ - 1;
        for (std::size_t i = 0; i < old_capacity; ++i) {
            if (old[i].index_plus_1 == 0) continue;
            const std::size_t hash = std::hash<std::string_view>{}(lines[old[i].index_plus_1 - 1]);
            std::size_t at = hash & mask;
            while (slots_[at].index_plus_1 != 0) at = (at + 1) & mask;
            slots_[at] = old[i];
        }
    }

    std::unique_ptr<Slot[], Free> slots_;
    std::size_t capacity_ = 0;
    std::size_t count_ = 0;
};

// Applies the rule to one line (see the header); `seen` holds the kept ones.
void take_line(std::string_view raw, UrlList& list, SeenLines& seen) {
    auto line = trim(raw);
    if (line.empty()) return;
    if (line.front() == '#') {
        ++list.comments;
        return;
    }
    if (!seen.insert(line, list.lines, static_cast<std::uint32_t>(list.lines.size()))) {
        ++list.duplicates;
        return;
    }
    list.lines.push_back(line);
}

}  // namespace

UrlList read_url_list(std::string_view text) {
    UrlList list;
    // One allocation for a million lines instead of twenty growing copies.
    auto estimate = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    list.lines.reserve(estimate);
    SeenLines seen(estimate);
    const char* at = text.data();
    const char* const end = text.data() + text.size();
    while (at < end) {
        // The next \n by memchr, then a \r before it (rare: \r\n files, or
        // a lone \r, which ends a line too); find_first_of("\r\n") looked
        // each byte up in the set one at a time.
        auto* newline = static_cast<const char*>(std::memchr(at, '\n', end - at));
        const char* line_end = newline ? newline : end;
        auto* cr = static_cast<const char*>(std::memchr(at, '\r', line_end - at));
        if (cr) line_end = cr;
        take_line(std::string_view(at, line_end - at), list, seen);
        if (line_end == end) break;
        // \r\n is one line end; a lone \r or \n is one too.
        at = line_end + (line_end[0] == '\r' && line_end + 1 < end && line_end[1] == '\n' ? 2 : 1);
    }
    return list;
}

UrlList read_url_entries(const std::vector<std::string_view>& entries) {
    UrlList list;
    list.lines.reserve(entries.size());
    SeenLines seen(entries.size());
    // An entry holding a line break is still one entry (one item), trimmed.
    for (auto entry : entries) take_line(entry, list, seen);
    return list;
}

}  // namespace litchi
