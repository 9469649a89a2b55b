// The URL list rule (jobs/url_list.hpp) against the shared cases in
// tests/cases/url-list.json, which web/tests/url-list.test.ts reads too: the
// CLI, the server and the web form split a list the same way.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "core/config.hpp"
#include "fetch/url_check.hpp"
#include "jobs/url_list.hpp"

namespace litchi {
namespace {

boost::json::array load_cases() {
    std::ifstream in(std::string(LITCHI_SOURCE_DIR) + "/tests/cases/url-list.json");
    std::stringstream text;
    text << in.rdbuf();
    return boost::json::parse(text.str()).at("cases").as_array();
}

std::vector<std::string> strings(const boost::json::value& list) {
    std::vector<std::string> out;
    for (const auto& v : list.as_array()) out.emplace_back(v.as_string());
    return out;
}

TEST(JobsUrlList, SharedCases) {
    auto cases = load_cases();
    ASSERT_GE(cases.size(), 5u);
    FetchLimits limits;  // the engine's defaults: what `fetch` and the server check with
    for (const auto& value : cases) {
        const auto& c = value.as_object();
        SCOPED_TRACE(std::string(c.at("name").as_string()));
        std::string text(c.at("text").as_string());
        auto list = read_url_list(text);
        std::vector<std::string> lines(list.lines.begin(), list.lines.end());
        EXPECT_EQ(lines, strings(c.at("lines")));
        EXPECT_EQ(list.duplicates, c.at("duplicates").to_number<std::size_t>());
        EXPECT_EQ(list.comments, c.at("comments").to_number<std::size_t>());
        std::vector<std::string> refused;
        for (const auto& line : lines) {
            auto verdict = check_url(line, limits);
            if (!verdict.ok) {
                EXPECT_EQ(verdict.reason, FailureReason::bad_url) << line;
                refused.push_back(line);
            }
        }
        EXPECT_EQ(refused, strings(c.at("refused")));

        // The same lines as separate entries (a JSON array, arguments): the same result.
        std::vector<std::string> raw;
        std::string line;
        std::istringstream split(text);
        while (std::getline(split, line, '\n')) {
            std::size_t start = 0;
            for (std::size_t cr; (cr = line.find('\r', start)) != std::string::npos; start = cr + 1)
                raw.push_back(line.substr(start, cr - start));
            raw.push_back(line.substr(start));
        }
        std::vector<std::string_view> entries(raw.begin(), raw.end());
        auto from_entries = read_url_entries(entries);
        EXPECT_EQ(std::vector<std::string>(from_entries.lines.begin(), from_entries.lines.end()),
                  strings(c.at("lines")));
        EXPECT_EQ(from_entries.duplicates, list.duplicates);
    }
}

}  // namespace
}  // namespace litchi
