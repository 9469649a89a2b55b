// See url_list.hpp.
#include "jobs/url_list.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>

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
        slots_.resize(capacity);
    }

    // True if `line` is new (then remembered as lines[index]).
    bool insert(std::string_view line, const std::vector<std::string_view>& lines,
                std::uint32_t index) {
        if ((count_ + 1) * 2 > slots_.size()) grow();
        const std::size_t hash = std::hash<std::string_view>{}(line);
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t at = hash & mask;; at = (at + 1) & mask) {
            Slot& slot = slots_[at];
            if (slot.index == kEmpty) {
                slot = {hash, index};
                ++count_;
                return true;
            }
            if (slot.hash == hash && lines[slot.index] == line) return false;
        }
    }

  private:
    static constexpr std::uint32_t kEmpty = UINT32_MAX;
    struct Slot {
        std::size_t hash = 0;
        std::uint32_t index = kEmpty;
    };

    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        const std::size_t mask = slots_.size() - 1;
        for (const Slot& slot : old) {
            if (slot.index == kEmpty) continue;
            std::size_t at = slot.hash & mask;
            while (slots_[at].index != kEmpty) at = (at + 1) & mask;
            slots_[at] = slot;
        }
    }

    std::vector<Slot> slots_;
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
