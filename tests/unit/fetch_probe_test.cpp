// The probe: libvips header checks and pixel bombs refused from the header.
#include <gtest/gtest.h>

#include <fstream>

#include "fetch/engine.hpp"
#include "fetch/probe.hpp"

namespace litchi {
namespace {

const bool kInit = (init_fetch_libraries("fetch_probe_test"), true);

class ProbeTest : public ::testing::Test {
  protected:
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("litchi-probe-" + std::to_string(::getpid()));
    void SetUp() override {
        ASSERT_TRUE(kInit);
        std::filesystem::create_directories(dir);
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    ProbeResult probe(const std::string& bytes, std::uint64_t max_pixels = 100'000'000) {
        auto file = dir / "x.part";
        std::ofstream(file, std::ios::binary) << bytes;
        std::size_t n = std::min(bytes.size(), kSniffBytes);
        return probe_image_file(
            file, std::span(reinterpret_cast<const unsigned char*>(bytes.data()), n), max_pixels);
    }
};

void be32(std::string& s, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(char((v >> shift) & 0xFF));
}

// PNG's CRC-32 (the IEEE polynomial), bit by bit: small inputs only.
std::uint32_t crc32_ieee(const std::string& data) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char byte : data) {
        crc ^= byte;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

std::string png_chunk(const char* type, const std::string& data) {
    std::string c;
    be32(c, std::uint32_t(data.size()));
    std::string body = std::string(type, 4) + data;
    c += body;
    be32(c, crc32_ieee(body));
    return c;
}

std::string png_header(std::uint32_t w, std::uint32_t h) {
    std::string ihdr;
    be32(ihdr, w);
    be32(ihdr, h);
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
    return std::string("\x89PNG\r\n\x1A\n", 8) + png_chunk("IHDR", ihdr);
}

TEST_F(ProbeTest, PngBombIsRefusedFromItsHeader) {
    auto r = probe(png_header(100000, 100000) + png_chunk("IEND", ""));
    EXPECT_EQ(r.reason, FailureReason::too_many_pixels) << r.detail;
    EXPECT_EQ(r.width, 100000);
    EXPECT_EQ(r.height, 100000);
}

TEST_F(ProbeTest, GifBombIsRefusedFromItsHeader) {
    std::string gif = "GIF89a";
    gif += std::string("\xA0\x86\xA0\x86\x00\x00\x00", 7);  // 34464x34464, no palette
    gif += std::string("\x2C\x00\x00\x00\x00\xA0\x86\xA0\x86\x00", 10);
    gif += std::string("\x02\x02\x44\x01\x00\x3B", 6);
    auto r = probe(gif, 1'000'000);
    EXPECT_TRUE(r.reason == FailureReason::too_many_pixels || r.reason == FailureReason::not_image)
        << r.detail;
    EXPECT_NE(r.reason, FailureReason::none);
}

TEST_F(ProbeTest, JpegBombIsRefusedFromItsHeader) {
    std::string jpg("\xFF\xD8\xFF\xC0\x00\x11\x08", 7);
    jpg += std::string("\xFF\xFF\xFF\xFF", 4);  // 65535 x 65535
    jpg += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
    jpg += std::string("\xFF\xD9", 2);
    auto r = probe(jpg);
    EXPECT_EQ(r.reason, FailureReason::too_many_pixels) << r.detail;
}

TEST_F(ProbeTest, BmpHeaderIsReadWithoutImageMagick) {
    std::string bmp("BM", 2);
    bmp += std::string(12, '\0');
    bmp += std::string("\x28\0\0\0", 4);
    bmp += std::string("\x10\0\0\0\xF0\xFF\xFF\xFF", 8);  // 16 x -16 (top-down)
    bmp += std::string(30, '\0');
    auto ok = probe(bmp);
    EXPECT_EQ(ok.reason, FailureReason::none) << ok.detail;
    EXPECT_EQ(ok.width, 16);
    EXPECT_EQ(ok.height, 16);
    EXPECT_EQ(probe(bmp, 100).reason, FailureReason::too_many_pixels);
}

TEST_F(ProbeTest, HtmlSvgAndTruncatedHeadersAreNotImages) {
    EXPECT_EQ(probe("<!doctype html><title>x</title>").reason, FailureReason::not_image);
    EXPECT_EQ(probe("<svg xmlns='http://www.w3.org/2000/svg'/>").reason, FailureReason::not_image);
    EXPECT_EQ(probe(std::string("\x89PNG\r\n\x1A\n", 8)).reason, FailureReason::not_image);
    EXPECT_EQ(probe(std::string("\xFF\xD8\xFF", 3)).reason, FailureReason::not_image);
}

}  // namespace
}  // namespace litchi
