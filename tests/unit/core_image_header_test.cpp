// Declared sizes straight from header bytes: the pixel-bomb gate.
#include <gtest/gtest.h>

#include <string>

#include "core/image_header.hpp"

namespace litchi {
namespace {

std::optional<DeclaredSize> size_of(ImageFormat f, const std::string& bytes) {
    return read_declared_size(
        f, std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

TEST(ImageHeaderTest, Png) {
    std::string png("\x89PNG\r\n\x1A\n\0\0\0\x0DIHDR\0\x01\x86\xA0\0\x01\x86\xA0\x08\x02\0\0\0",
                    29);
    auto s = size_of(ImageFormat::png, png);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 100000u);
    EXPECT_EQ(s->height, 100000u);
    EXPECT_FALSE(size_of(ImageFormat::png, png.substr(0, 20)));
}

TEST(ImageHeaderTest, GifLogicalScreen) {
    std::string gif("GIF89a\x10\x27\x20\x4E\0\0\0", 13);
    auto s = size_of(ImageFormat::gif, gif);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 10000u);
    EXPECT_EQ(s->height, 20000u);
}

// Found by tests/fuzz/image_header.cpp (cross-checked with libvips): a 7x3
// screen whose frame is 768 rows tall is decoded 7x768 (the canvas grows to
// hold the frame), and the gate read only the screen.
TEST(ImageHeaderTest, GifFramesPastTheScreenCount) {
    std::string gif("GIF89a\x07\x00\x03\x00\x80\x00\x00", 13);
    gif += std::string("\x47\x70\x4c\x00\x00\x00", 6);          // global colour table, 2 colours
    gif += std::string("\x21\xf9\x04\x05\x00\x00\x00\x00", 8);  // graphic control
    gif += std::string("\x2c\x00\x00\x00\x00\x07\x00\x00\x03\x00", 10);  // 7x768 at 0,0
    gif += std::string("\x02\x04\x8c\x8f\xa9\x05\x00", 7);               // LZW data
    gif += std::string("\x2c\x10\x00\x20\x00\x05\x00\x05\x00\x00", 10);  // 5x5 at 16,32
    gif += std::string("\x02\x01\x00\x00;", 5);
    auto s = size_of(ImageFormat::gif, gif);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 21u);
    EXPECT_EQ(s->height, 768u);
    // Stray bytes before a frame (libvips reads on past them).
    std::string stray = gif.substr(0, 27) + std::string("\0\x03\0", 3) + gif.substr(27);
    s = size_of(ImageFormat::gif, stray);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 21u);
    // Cut inside the first frame's data: what was read still counts.
    s = size_of(ImageFormat::gif, gif.substr(0, 40));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->height, 768u);
}

TEST(ImageHeaderTest, JpegSkipsSegmentsToTheFrameHeader) {
    std::string jpg("\xFF\xD8", 2);
    jpg += std::string(
        "\xFF\xE1\x00\x06"
        "Exif",
        8);  // an APP1 segment first
    jpg += std::string("\xFF\xC2\x00\x11\x08\x03\xE8\x07\xD0\x03",
                       10);  // progressive: 2000 wide, 1000 high
    auto s = size_of(ImageFormat::jpeg, jpg);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 2000u);
    EXPECT_EQ(s->height, 1000u);
    EXPECT_FALSE(size_of(ImageFormat::jpeg, std::string("\xFF\xD8\xFF\xDA\x00\x02", 6)));
    EXPECT_FALSE(size_of(ImageFormat::jpeg, std::string("\xFF\xD8\x00\x00\x00\x00", 6)));
}

TEST(ImageHeaderTest, WebpAllThreeKinds) {
    std::string base("RIFF\0\0\0\0WEBP", 12);
    std::string lossy = base + std::string("VP8 \0\0\0\0\0\0\0\x9D\x01\x2A\x80\x02\xE0\x01", 18) +
                        std::string(10, '\0');
    auto s = size_of(ImageFormat::webp, lossy);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 640u);
    EXPECT_EQ(s->height, 480u);
    std::string ext = base + std::string("VP8X\x0A\0\0\0\0\0\0\0\x9F\x86\x01\x9F\x86\x01", 18) +
                      std::string(10, '\0');
    s = size_of(ImageFormat::webp, ext);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 100000u);
    EXPECT_EQ(s->height, 100000u);
}

TEST(ImageHeaderTest, BmpBottomUpAndTopDown) {
    std::string bmp("BM", 2);
    bmp += std::string(12, '\0');
    bmp += std::string("\x28\0\0\0\x20\0\0\0\xE0\xFF\xFF\xFF", 12);  // 32 x -32
    auto s = size_of(ImageFormat::bmp, bmp);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 32u);
    EXPECT_EQ(s->height, 32u);
    EXPECT_FALSE(size_of(ImageFormat::tiff, bmp));
}

// Issue 10: an extension's first byte after its label is a block size; a 0
// there is an empty block, then sub-blocks follow up to a terminator (libnsgif
// reads it so). Here that puts the first frame at 1024,8448, 30271x61801.
TEST(ImageHeaderTest, GifExtensionBlockSizeZeroIsNotItsTerminator) {
    std::string gif("GIF89a\x07\x00\x03\x00\x00\x00\x00", 13);
    gif += std::string("\x21\xff\x00", 3);  // application extension, block size 0
    gif += std::string("\x21", 1);          // ...so this is a 33-byte sub-block
    gif += std::string(33, '\x01');
    gif += std::string("\x00", 1);  // terminator
    gif += std::string("\x2c\x00\x04\x00\x21\x3f\x76\x69\xf1\x01", 10);
    gif += std::string("\x00\x01\x00\x00;", 5);
    auto s = size_of(ImageFormat::gif, gif);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->width, 1024u + 30271u);
    EXPECT_EQ(s->height, 8448u + 61801u);
    auto structure = check_image_structure(
        ImageFormat::gif,
        std::span(reinterpret_cast<const unsigned char*>(gif.data()), gif.size()));
    ASSERT_TRUE(structure);
    EXPECT_TRUE(structure->valid);
    EXPECT_EQ(structure->width, 1024u + 30271u);
    EXPECT_EQ(structure->pages, 1u);
}

TEST(ImageHeaderTest, StructureIsCheckedOnlyForTheFormatsItKnows) {
    std::string tiff("II*\0\x08\0\0\0", 8);
    EXPECT_FALSE(check_image_structure(
        ImageFormat::tiff,
        std::span(reinterpret_cast<const unsigned char*>(tiff.data()), tiff.size())));
    auto png = check_image_structure(ImageFormat::png, {});
    ASSERT_TRUE(png);
    EXPECT_FALSE(png->valid);
    EXPECT_STREQ(png->problem, "PNG signature missing");
}

}  // namespace
}  // namespace litchi
