// See url_list.hpp.
#include "jobs/url_list.hpp"

#include <algorithm>
#include <unordered_set>

namespace litchi {
namespace {

std::string_view trim(std::string_view text) {
    constexpr std::string_view kSpace = " \t\r\n\f\v";
    auto begin = text.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    auto end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

// Applies the rule to one line (see the header); `seen` holds the kept ones.
void take_line(std::string_view raw, UrlList& list, std::unordered_set<std::string_view>& seen) {
    auto line = trim(raw);
    if (line.empty()) return;
    if (line.front() == '#') {
        ++list.comments;
        return;
    }
    if (!seen.insert(line).second) {
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
    std::unordered_set<std::string_view> seen;
    seen.reserve(estimate);
    while (!text.empty()) {
        auto end = text.find_first_of("\r\n");
        take_line(text.substr(0, end), list, seen);
        if (end == std::string_view::npos) break;
        // \r\n is one line end; a lone \r or \n is one too.
        std::size_t skip = text.compare(end, 2, "\r\n") == 0 ? 2 : 1;
        text.remove_prefix(end + skip);
    }
    return list;
}

UrlList read_url_entries(const std::vector<std::string_view>& entries) {
    UrlList list;
    list.lines.reserve(entries.size());
    std::unordered_set<std::string_view> seen;
    seen.reserve(entries.size());
    // An entry holding a line break is still one entry (one item), trimmed.
    for (auto entry : entries) take_line(entry, list, seen);
    return list;
}

}  // namespace litchi
