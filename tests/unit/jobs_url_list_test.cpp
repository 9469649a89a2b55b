// The URL list rule (jobs/url_list.hpp) against the shared cases in
// tests/cases/url-list.json, which web/tests/url-list.test.ts reads too: the
// CLI, the server and the web form split a list the same way.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>
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

// Many lines, many duplicates, every kind of line end: the first of each
// distinct line is kept, in order, and the rest counted, as a reference set
// says. Lone \r ends make more lines than the \n count the duplicate table is
// sized from, so it has to grow on the way.
TEST(JobsUrlList, DuplicatesAmongManyLines) {
    std::string text;
    const char* ends[] = {"\n", "\r\n", "\r"};
    std::vector<std::string> expected;
    std::set<std::string> reference;
    std::size_t duplicates = 0;
    for (int i = 0; i < 20'000; ++i) {
        // Every 3rd line repeats one from far back; the rest are new.
        std::string line = "http://127.0.0.1/" + std::to_string(i % 3 == 0 ? i / 7 : i) + ".png";
        text += line;
        text += ends[i % 3 == 2 ? 2 : i % 2];
        if (reference.insert(line).second)
            expected.push_back(line);
        else
            ++duplicates;
    }
    ASSERT_GT(duplicates, 1000u);
    auto list = read_url_list(text);
    EXPECT_EQ(std::vector<std::string>(list.lines.begin(), list.lines.end()), expected);
    EXPECT_EQ(list.duplicates, duplicates);

    std::vector<std::string> raw(expected.begin(), expected.end());
    raw.insert(raw.end(), expected.begin(), expected.begin() + 100);  // repeated at the end
    std::vector<std::string_view> entries(raw.begin(), raw.end());
    auto from_entries = read_url_entries(entries);
    EXPECT_EQ(from_entries.lines.size(), expected.size());
    EXPECT_EQ(from_entries.duplicates, 100u);
}

}  // namespace
}  // namespace litchi
