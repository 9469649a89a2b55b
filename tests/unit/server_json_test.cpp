// The wire form of numbers in job JSON: rate rounded (one decimal below 10/s,
// whole above) and an integer when whole, eta whole seconds or null, and
// to_json_text() writing doubles as plain decimals instead of the exponent
// form Boost.JSON 1.81 uses ("1.23E1"), while reading back to the same value.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <limits>

#include "server/json.hpp"

namespace litchi {
namespace {

JobSnapshot job_with(double rate, std::optional<double> eta) {
    JobSnapshot job;
    job.id = 7;
    job.name = "numbers";
    job.state = JobState::running;
    job.rate = rate;
    job.eta = eta;
    return job;
}

TEST(ServerJson, WholeRatesAreIntegersSoBoostWritesThemPlainly) {
    for (auto [rate, expected] : {std::pair{0.0, 0},
                                  {0.04, 0},
                                  {1.0, 1},
                                  {12.3, 12},
                                  {12.6, 13},
                                  {1499.7, 1500},
                                  {-3.0, 0}}) {
        auto value = rate_to_json(rate);
        ASSERT_TRUE(value.is_int64()) << rate << " -> " << boost::json::serialize(value);
        EXPECT_EQ(value.as_int64(), expected) << rate;
    }
    EXPECT_EQ(rate_to_json(std::numeric_limits<double>::quiet_NaN()).as_int64(), 0);
    EXPECT_EQ(rate_to_json(std::numeric_limits<double>::infinity()).as_int64(), 0);
    // The case that was written "0E0" before.
    auto idle = job_to_json(job_with(0, std::nullopt));
    EXPECT_EQ(boost::json::serialize(idle["rate"]), "0");
    EXPECT_EQ(boost::json::serialize(idle["eta"]), "null");
}

TEST(ServerJson, SlowRatesKeepOneDecimal) {
    for (auto [rate, expected] : {std::pair{0.25, 0.3}, {0.44, 0.4}, {2.349, 2.3}, {9.94, 9.9}}) {
        auto value = rate_to_json(rate);
        ASSERT_TRUE(value.is_double()) << rate;
        EXPECT_DOUBLE_EQ(value.as_double(), expected);
    }
    // 9.96 rounds to a whole 10.
    EXPECT_EQ(rate_to_json(9.96).as_int64(), 10);
}

TEST(ServerJson, EtaIsWholeSecondsOrNull) {
    auto value = job_to_json(job_with(2.5, 41.4));
    ASSERT_TRUE(value["eta"].is_int64());
    EXPECT_EQ(value["eta"].as_int64(), 41);
    EXPECT_TRUE(job_to_json(job_with(2.5, std::nullopt))["eta"].is_null());
    EXPECT_TRUE(
        job_to_json(job_with(2.5, std::numeric_limits<double>::infinity()))["eta"].is_null());
    EXPECT_TRUE(job_to_json(job_with(2.5, -1.0))["eta"].is_null());
}

TEST(ServerJson, JobTextHasNoExponentAndReadsBack) {
    auto value = job_to_json(job_with(2.349, 12.0));
    auto boost_text = boost::json::serialize(value);
    EXPECT_NE(boost_text.find("\"rate\":2.3E0"), std::string::npos)
        << boost_text;  // why we need it
    auto text = to_json_text(value);
    EXPECT_NE(text.find("\"rate\":2.3,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"eta\":12}"), std::string::npos) << text;
    EXPECT_EQ(text.find('E'), std::string::npos) << text;
    EXPECT_EQ(boost::json::parse(text), boost::json::value(value));
}

TEST(ServerJson, TextMatchesBoostForEverythingButDoubles) {
    boost::json::value value = {
        {"string", "quote \" backslash \\ newline \n tab \t unicode \xc3\xa9 control \x01"},
        {"int", -42},
        {"uint", std::numeric_limits<std::uint64_t>::max()},
        {"bool", true},
        {"null", nullptr},
        {"array", {1, "two", {{"three", 3}}, boost::json::array{}}},
        {"empty", boost::json::object{}},
        {"key \"quoted\"", 1},
    };
    EXPECT_EQ(to_json_text(value), boost::json::serialize(value));
}

TEST(ServerJson, DoublesArePlainDecimalsThatRoundTrip) {
    struct Case {
        double number;
        const char* text;
    };
    for (auto [number, text] :
         {Case{0.5, "0.5"}, Case{12.3, "12.3"}, Case{-0.125, "-0.125"}, Case{1500.0, "1500"},
          Case{0.0, "0"}, Case{0.0001, "1e-04"}, Case{1e-7, "1e-07"}, Case{1e21, "1e+21"},
          Case{123456789012.5, "123456789012.5"}}) {
        EXPECT_EQ(to_json_text(boost::json::value(number)), text) << number;
        EXPECT_EQ(boost::json::parse(text).to_number<double>(), number) << text;
    }
    EXPECT_EQ(to_json_text(boost::json::value(std::numeric_limits<double>::quiet_NaN())), "null");
    EXPECT_EQ(to_json_text(boost::json::value(-std::numeric_limits<double>::infinity())), "null");
    auto largest = to_json_text(boost::json::value(std::numeric_limits<double>::max()));
    EXPECT_EQ(largest, "1.7976931348623157e+308");
    EXPECT_EQ(boost::json::parse(largest).to_number<double>(), std::numeric_limits<double>::max());
}

TEST(ServerJson, JobAndItemShapesMatchTheContract) {
    JobSnapshot job;
    job.id = 3;
    job.user = 9;
    job.name = "json";
    job.state = JobState::queued;
    job.created = 1714564800123;
    job.counts = {2, 1, 0, 0, 1, 0};
    auto value = job_to_json(job);
    for (auto key : {"id", "name", "state", "created", "counts", "bytes", "rate", "eta"})
        EXPECT_TRUE(value.contains(key)) << key;
    EXPECT_EQ(value.size(), 8u) << "the owner and `updated` stay inside";
    auto& counts = value["counts"].as_object();
    for (auto key : {"total", "queued", "active", "done", "failed", "cancelled"})
        EXPECT_TRUE(counts.contains(key)) << key;
    EXPECT_EQ(value["state"].as_string(), "queued");
    EXPECT_TRUE(value["eta"].is_null());
    EXPECT_TRUE(value["rate"].is_int64());  // idle: 0, not 0E0
    EXPECT_EQ(value["created"].as_string(), "2024-05-01T12:00:00.123Z");

    ItemRecord queued;
    queued.id = 1;
    queued.url = "http://example.com/1.jpg";
    EXPECT_EQ(item_to_json(queued).size(), 4u) << "id url state attempts";
    ItemRecord failed = queued;
    failed.state = ItemState::failed;
    failed.reason = FailureReason::bad_url;
    auto failed_json = item_to_json(failed);
    EXPECT_EQ(failed_json["reason"].as_string(), "bad_url");
    EXPECT_FALSE(failed_json.contains("sha256"));
    ItemRecord done = queued;
    done.state = ItemState::done;
    done.format = ImageFormat::png;
    done.width = 10;
    done.bytes = 1000;
    done.http_status = 200;
    done.sha256 = std::string(64, 'a');
    auto done_json = item_to_json(done);
    EXPECT_EQ(done_json["format"].as_string(), "png");
    EXPECT_EQ(done_json["width"].as_int64(), 10);
    EXPECT_EQ(done_json["bytes"].as_int64(), 1000);
    EXPECT_EQ(done_json["http_status"].as_int64(), 200);
    EXPECT_EQ(format_time_iso8601(0), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace litchi
