// Magic-byte sniffing: the first gate every downloaded body passes.
#include <gtest/gtest.h>

#include <string>

#include "core/image_format.hpp"

namespace litchi {
namespace {

ImageFormat sniff(const std::string& bytes) {
    return sniff_image(
        std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

// An ISO BMFF "ftyp" box: major brand, minor version, two compatible brands.
std::string bmff(const char* major, const char* compat1, const char* compat2) {
    std::string box(
        "\0\0\0\x18"
        "ftyp",
        8);
    box += major;
    box += std::string("\0\0\0\0", 4);
    box += compat1;
    box += compat2;
    return box;
}

TEST(ImageFormatTest, SniffsEveryAcceptedFormat) {
    EXPECT_EQ(sniff("\xFF\xD8\xFF\xE0xxxxJFIF"), ImageFormat::jpeg);
    EXPECT_EQ(sniff("\x89PNG\r\n\x1A\n...."), ImageFormat::png);
    EXPECT_EQ(sniff("GIF89a...."), ImageFormat::gif);
    EXPECT_EQ(sniff("GIF87a...."), ImageFormat::gif);
    EXPECT_EQ(sniff(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)), ImageFormat::webp);
    EXPECT_EQ(sniff(std::string("II*\0\x08\0\0\0", 8)), ImageFormat::tiff);
    EXPECT_EQ(sniff(std::string("MM\0*\0\0\0\x08", 8)), ImageFormat::tiff);
    std::string bmp("BM", 2);
    bmp += std::string(12, '\0');
    bmp += std::string("\x28\0\0\0", 4);
    EXPECT_EQ(sniff(bmp), ImageFormat::bmp);
    EXPECT_EQ(sniff(bmff("avif", "miaf", "mif1")), ImageFormat::avif);
    EXPECT_EQ(sniff(bmff("heic", "miaf", "mif1")), ImageFormat::heic);
    EXPECT_EQ(sniff(bmff("mif1", "avif", "miaf")), ImageFormat::avif);
}

TEST(ImageFormatTest, RefusesWhatIsNotAnImage) {
    EXPECT_EQ(sniff("<!DOCTYPE html><html>"), ImageFormat::unknown);
    EXPECT_EQ(sniff("<svg xmlns=\"http://www.w3.org/2000/svg\">"), ImageFormat::unknown);
    EXPECT_EQ(sniff("<?xml version=\"1.0\"?><svg>"), ImageFormat::unknown);
    EXPECT_EQ(sniff(std::string("\x1f\x8b\x08\0\0\0\0\0", 8)), ImageFormat::unknown);  // gzip
    EXPECT_EQ(sniff("%PDF-1.7"), ImageFormat::unknown);
    EXPECT_EQ(sniff(""), ImageFormat::unknown);
    EXPECT_EQ(sniff("\xFF\xD8"), ImageFormat::unknown);  // too short to be sure
    EXPECT_EQ(sniff(std::string("RIFF\x10\0\0\0WAVEfmt ", 16)), ImageFormat::unknown);
    EXPECT_EQ(sniff(bmff("isom", "mp41", "iso2")), ImageFormat::unknown);  // an MP4, not HEIF
    std::string bad_bmp("BM", 2);
    bad_bmp += std::string(12, '\0');
    bad_bmp += std::string("\x99\0\0\0", 4);
    EXPECT_EQ(sniff(bad_bmp), ImageFormat::unknown);
}

TEST(ImageFormatTest, NamesAndExtensionsRoundTrip) {
    for (auto f : {ImageFormat::jpeg, ImageFormat::png, ImageFormat::gif, ImageFormat::webp,
                   ImageFormat::bmp, ImageFormat::tiff, ImageFormat::avif, ImageFormat::heic}) {
        EXPECT_EQ(parse_extension(extension(f)), f);
        EXPECT_EQ(parse_format_name(format_name(f)), f);
        EXPECT_TRUE(mime_type(f).starts_with("image/"));
    }
    EXPECT_EQ(extension(ImageFormat::jpeg), "jpg");
    EXPECT_EQ(format_name(ImageFormat::jpeg), "jpeg");
    EXPECT_FALSE(parse_extension("svg"));
}

}  // namespace
}  // namespace litchi
