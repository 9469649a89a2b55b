// Manifest lines: the fetch contract's file format, written and read back.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "fetch/manifest.hpp"

namespace litchi {
namespace {

TEST(ManifestTest, DoneLineRoundTripsWithEveryField) {
    ManifestEntry e;
    e.url = "http://example.com/a.jpg?x=\"q\"";
    e.done = true;
    e.http_status = 200;
    e.file = std::string(64, 'a') + ".jpg";
    e.sha256 = std::string(64, 'a');
    e.bytes = 12345;
    e.width = 640;
    e.height = 480;
    e.format = ImageFormat::jpeg;
    e.attempts = 2;
    std::string line = to_manifest_line(e);
    auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v["status"], "done");
    EXPECT_EQ(v["format"], "jpeg");
    EXPECT_FALSE(v.contains("reason"));
    auto back = parse_manifest_line(line);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->url, e.url);
    EXPECT_TRUE(back->done);
    EXPECT_EQ(back->file, e.file);
    EXPECT_EQ(back->sha256, e.sha256);
    EXPECT_EQ(back->bytes, e.bytes);
    EXPECT_EQ(back->width, 640);
    EXPECT_EQ(back->height, 480);
    EXPECT_EQ(back->format, ImageFormat::jpeg);
    EXPECT_EQ(back->attempts, 2);
    EXPECT_EQ(back->http_status, 200);
}

TEST(ManifestTest, FailedLineCarriesReasonAndNoFileFields) {
    ManifestEntry e;
    e.url = "http://example.com/missing.png";
    e.reason = FailureReason::http;
    e.http_status = 404;
    e.attempts = 1;
    auto v = boost::json::parse(to_manifest_line(e)).as_object();
    EXPECT_EQ(v["status"], "failed");
    EXPECT_EQ(v["reason"], "http");
    EXPECT_EQ(v["http_status"], 404);
    EXPECT_FALSE(v.contains("file"));
    EXPECT_FALSE(v.contains("sha256"));
    auto back = parse_manifest_line(to_manifest_line(e));
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->done);
    EXPECT_EQ(back->reason, FailureReason::http);
    // A failure without an HTTP answer has no http_status at all.
    ManifestEntry bad;
    bad.url = "nonsense";
    bad.reason = FailureReason::bad_url;
    EXPECT_FALSE(boost::json::parse(to_manifest_line(bad)).as_object().contains("http_status"));
}

// The line is written field by field; it must be the JSON a serializer
// writes (here Boost.JSON's, which wrote it before), for every byte a URL or
// a file name may hold: quotes, backslashes, control characters, UTF-8.
TEST(ManifestTest, LinesAreWhatAJsonSerializerWrites) {
    std::string every_byte;
    for (int c = 0; c < 256; ++c) every_byte += char(c);
    ManifestEntry done;
    done.url = "http://example.com/" + every_byte;
    done.done = true;
    done.http_status = 200;
    done.file = "caf\xc3\xa9 \"x\"\\.png";
    done.sha256 = std::string(64, 'f');
    done.bytes = 18446744073709551615u;
    done.width = 1;
    done.height = 65535;
    done.format = ImageFormat::png;
    done.attempts = 3;
    boost::json::object expected{
        {"url", done.url},       {"status", "done"},    {"http_status", 200}, {"file", done.file},
        {"sha256", done.sha256}, {"bytes", done.bytes}, {"width", 1},         {"height", 65535},
        {"format", "png"},       {"attempts", 3}};
    EXPECT_EQ(to_manifest_line(done), boost::json::serialize(expected));
    // Read back (the parser takes valid UTF-8 only: the ASCII bytes here).
    done.url = "http://example.com/" + every_byte.substr(0, 128);
    auto back = parse_manifest_line(to_manifest_line(done));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->url, done.url);
    EXPECT_EQ(back->file, done.file);
    EXPECT_EQ(back->bytes, done.bytes);

    ManifestEntry failed;
    failed.url = "\t\x7f";
    failed.reason = FailureReason::too_large;
    failed.attempts = 1;
    EXPECT_EQ(
        to_manifest_line(failed),
        boost::json::serialize(boost::json::object{
            {"url", failed.url}, {"status", "failed"}, {"reason", "too_large"}, {"attempts", 1}}));
}

TEST(ManifestTest, GarbageLinesAreRefused) {
    for (const char* line :
         {"", "{", "[]", "{\"url\":\"x\"}", "{\"url\":\"x\",\"status\":\"weird\"}",
          "{\"url\":\"x\",\"status\":\"failed\",\"reason\":\"nope\"}",
          "{\"url\":\"x\",\"status\":\"done\"}", "{\"url\":1,\"status\":\"done\"}"}) {
        EXPECT_FALSE(parse_manifest_line(line)) << line;
    }
}

TEST(ManifestTest, WriteIsInOrderSkipsUnfinishedAndReadsBack) {
    auto dir =
        std::filesystem::temp_directory_path() / ("litchi-manifest-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto file = dir / "m.jsonl";
    std::vector<std::optional<ManifestEntry>> entries(3);
    entries[0].emplace();
    entries[0]->url = "http://a/";
    entries[0]->reason = FailureReason::dns;
    entries[2].emplace();
    entries[2]->url = "http://c/";
    entries[2]->reason = FailureReason::timeout;
    write_manifest(file, entries);
    {
        std::ofstream append(file, std::ios::app);
        append << "not json\n";
    }
    std::size_t bad = 0;
    auto back = read_manifest(file, &bad);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(back[0].url, "http://a/");
    EXPECT_EQ(back[1].url, "http://c/");
    EXPECT_EQ(bad, 1u);
    EXPECT_FALSE(std::filesystem::exists(dir / ".m.jsonl.tmp"));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace litchi
