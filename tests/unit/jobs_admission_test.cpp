// URL admission: what the lines of a new job become before the store sees
// them. Trimmed, checked by the engine's own rule, refused lines kept (safe to
// show) with their reason, names cleaned.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "jobs/admission.hpp"

namespace litchi {
namespace {

TEST(JobsAdmission, SplitLinesSkipsBlankLinesAndTrims) {
    auto lines = split_url_lines("http://a/1\r\n\n   \t\nhttp://a/2  \nhttp://a/3");
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "http://a/1");
    EXPECT_EQ(lines[1], "http://a/2");
    EXPECT_EQ(lines[2], "http://a/3");
    EXPECT_TRUE(split_url_lines("").empty());
    EXPECT_TRUE(split_url_lines("\n\r\n").empty());
}

TEST(JobsAdmission, BadLinesAreRefusedWithTheirReasonAndKeptInOrder) {
    const std::string bad_bytes(
        "http://example.com/\xff\x01"
        "bad");
    JobRequest request{
        7,
        "  mixed  ",
        {"http://example.com/a.jpg", "ftp://example.com/b.jpg", "not a url at all",
         "http://127.0.0.2/private.jpg", "  https://example.com/c.png  ", "", bad_bytes}};
    NewJob job = admit_job(request, FetchLimits{});
    EXPECT_EQ(job.user, 7);
    EXPECT_EQ(job.name, "mixed");
    ASSERT_EQ(job.items.size(), 7u);
    EXPECT_EQ(job.items[0].refused, FailureReason::none);
    EXPECT_EQ(job.items[1].refused, FailureReason::bad_url);
    EXPECT_EQ(job.items[2].refused, FailureReason::bad_url);
    EXPECT_EQ(job.items[3].refused, FailureReason::blocked_address);
    EXPECT_EQ(job.items[4].refused, FailureReason::none);
    EXPECT_EQ(job.items[4].url, "https://example.com/c.png") << "trimmed";
    EXPECT_EQ(job.items[5].refused, FailureReason::bad_url);
    EXPECT_NE(job.items[6].refused, FailureReason::none);
    // Stored text is valid UTF-8 without control characters whatever came in.
    EXPECT_EQ(job.items[6].url.find('\xff'), std::string::npos);
    EXPECT_EQ(job.items[6].url.find('\x01'), std::string::npos);
}

TEST(JobsAdmission, TheEnginesLimitsDecide) {
    JobRequest request{1, "", {"http://127.0.0.2/x.jpg"}};
    FetchLimits strict;
    EXPECT_EQ(admit_job(request, strict).items[0].refused, FailureReason::blocked_address);
    FetchLimits open;
    open.allow_private = true;
    EXPECT_EQ(admit_job(request, open).items[0].refused, FailureReason::none);
}

TEST(JobsAdmission, LongNamesAndRefusedLinesAreCut) {
    std::string long_name(500, 'n');
    std::string long_line = "bad " + std::string(5000, 'x');
    JobRequest request{1, long_name, {long_line}};
    AdmissionLimits limits;
    limits.max_name_bytes = 10;
    limits.max_refused_url_bytes = 100;
    NewJob job = admit_job(request, FetchLimits{}, limits);
    EXPECT_EQ(job.name.size(), 10u);
    ASSERT_EQ(job.items.size(), 1u);
    EXPECT_LE(job.items[0].url.size(), 100u);
    EXPECT_EQ(job.items[0].refused, FailureReason::bad_url);
}

// A large job is checked by several threads, each a share of the lines: the
// result is the same as one line at a time, in input order, and the text of
// rewritten and refused lines stays valid after the job is moved.
TEST(JobsAdmission, LargeJobsKeepOrderAndTheirRewrittenText) {
    const std::size_t n = 100000;
    std::vector<std::string> lines;
    lines.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (i % 997 == 0)
            lines.push_back("HTTP://Example.COM/" + std::to_string(i) + ".png#x");
        else if (i % 1009 == 0)
            lines.push_back("ftp://example.com/" + std::to_string(i));
        else
            lines.push_back("http://example.com/" + std::to_string(i) + ".png");
    }
    JobRequest request{1, "big", std::vector<std::string_view>(lines.begin(), lines.end())};
    NewJob admitted = admit_job(request, FetchLimits{});
    NewJob job = std::move(admitted);
    ASSERT_EQ(job.items.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
        const NewItem& item = job.items[i];
        if (i % 997 == 0) {
            ASSERT_EQ(item.refused, FailureReason::none) << i;
            ASSERT_EQ(item.url, "http://example.com/" + std::to_string(i) + ".png") << i;
        } else if (i % 1009 == 0) {
            ASSERT_EQ(item.refused, FailureReason::bad_url) << i;
            ASSERT_EQ(item.url, lines[i]) << i;
        } else {
            ASSERT_EQ(item.refused, FailureReason::none) << i;
            ASSERT_EQ(item.url, lines[i]) << i;
            ASSERT_EQ(item.url.data(), lines[i].data()) << "kept as it came, not copied";
        }
    }
}

}  // namespace
}  // namespace litchi
