// The one rule for a list of URLs, wherever it comes from (`litchi fetch`'s
// arguments and -i file, POST /api/jobs as text/plain or JSON; the web app's
// api/url-list.ts is the same rule in TypeScript, and both are tested against
// tests/cases/url-list.json):
//
//   - text is split into lines at \n, \r\n or \r; each line (or each JSON
//     array entry, each argument) is trimmed of ASCII white space;
//   - blank lines and lines starting with '#' (comments) are skipped;
//   - a line equal to an earlier kept line is a duplicate: dropped, counted;
//   - every other line is kept, in order, valid or not: what is not a usable
//     URL (including one with a user name or password, "http://user:pw@host/")
//     is refused by check_url as bad_url, the same way for every caller.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace litchi {

struct UrlList {
    std::vector<std::string_view> lines;  // kept, trimmed, in input order; point into the input
    std::size_t duplicates = 0;           // dropped: equal to an earlier kept line
    std::size_t comments = 0;             // skipped: starting with '#'
};

// Lines of a text (a file, a text/plain body).
UrlList read_url_list(std::string_view text);

// Entries that are already one per item (a JSON array, command-line arguments).
UrlList read_url_entries(const std::vector<std::string_view>& entries);

}  // namespace litchi
