// The structural check (core/image_header: check_image_structure) against
// libvips's own header read, on a corpus of real files written by real
// encoders (tests/unit/images/, see make-corpus.sh there) and on damaged
// copies of them: both must agree on format, width, height, pages and whether
// the file is an image at all. The probe relies on the check in place of a
// libvips open, so any disagreement here is an image the probe would judge
// differently than libvips did before.
#include <gtest/gtest.h>
#include <vips/vips.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/image_header.hpp"
#include "fetch/engine.hpp"
#include "fetch/probe.hpp"

namespace litchi {
namespace {

const bool kInit = (init_fetch_libraries("fetch_image_structure_test"), true);

using Bytes = std::vector<unsigned char>;

struct Verdict {
    bool valid = false;
    std::uint64_t width = 0, height = 0;
    std::uint32_t pages = 0;
    bool operator==(const Verdict&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Verdict& v) {
    if (!v.valid) return os << "not an image";
    return os << v.width << "x" << v.height << " pages " << v.pages;
}

// What libvips's header-only open makes of the bytes (the loaders are lazy).
Verdict vips_verdict(ImageFormat format, const Bytes& bytes) {
    VipsImage* image = nullptr;
    void* buf = const_cast<unsigned char*>(bytes.data());
    int rc = -1;
    switch (format) {
        case ImageFormat::png:
            rc = vips_pngload_buffer(buf, bytes.size(), &image, nullptr);
            break;
        case ImageFormat::jpeg:
            rc = vips_jpegload_buffer(buf, bytes.size(), &image, nullptr);
            break;
        case ImageFormat::gif:
            rc = vips_gifload_buffer(buf, bytes.size(), &image, nullptr);
            break;
        case ImageFormat::webp:
            rc = vips_webpload_buffer(buf, bytes.size(), &image, nullptr);
            break;
        default:
            break;
    }
    vips_error_clear();
    if (rc != 0 || !image) return {};
    Verdict v{true, std::uint64_t(vips_image_get_width(image)),
              std::uint64_t(vips_image_get_height(image)),
              std::uint32_t(std::max(1, vips_image_get_n_pages(image)))};
    g_object_unref(image);
    return v;
}

Verdict our_verdict(ImageFormat format, const Bytes& bytes) {
    auto s = check_image_structure(format, bytes);
    if (!s || !s->valid) return {};
    return {true, s->width, s->height, s->pages};
}

Bytes read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::filesystem::path> corpus() {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(LITCHI_TEST_IMAGES))
        if (entry.path().extension() != ".sh") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

ImageFormat format_of(const Bytes& bytes) {
    return sniff_image(std::span(bytes.data(), std::min(bytes.size(), kSniffBytes)));
}

TEST(ImageStructureTest, CorpusCoversWhatTheIssueNames) {
    std::vector<std::string> names;
    for (const auto& f : corpus()) names.push_back(f.filename().string());
    for (const char* wanted :
         {"progressive.jpg", "cmyk.jpg", "exif-baseline.jpg", "arithmetic.jpg", "interlaced.png",
          "palette.png", "animated.gif", "interlaced.gif", "animated.webp", "lossless.webp",
          "animated-lossless.webp", "alpha.webp"})
        EXPECT_NE(std::find(names.begin(), names.end(), wanted), names.end()) << wanted;
}

// Every real file: an image to both, the same size and page count.
TEST(ImageStructureTest, RealFilesAgreeWithLibvips) {
    ASSERT_TRUE(kInit);
    for (const auto& file : corpus()) {
        SCOPED_TRACE(file.filename().string());
        auto bytes = read_file(file);
        auto format = format_of(bytes);
        ASSERT_NE(format, ImageFormat::unknown);
        auto theirs = vips_verdict(format, bytes);
        EXPECT_TRUE(theirs.valid);
        EXPECT_EQ(our_verdict(format, bytes), theirs);
    }
}

// Damaged copies: cut at every length through the headers and at a spread of
// lengths after, and single bytes changed in the first 64 bytes. Whatever
// libvips makes of each, the structural check makes the same.
TEST(ImageStructureTest, DamagedFilesAgreeWithLibvips) {
    ASSERT_TRUE(kInit);
    int compared = 0, refused = 0;
    for (const auto& file : corpus()) {
        auto whole = read_file(file);
        auto format = format_of(whole);
        std::vector<Bytes> variants;
        for (std::size_t n = 0; n < whole.size(); n += n < 400 ? 1 : whole.size() / 40 + 1)
            variants.emplace_back(whole.begin(), whole.begin() + std::ptrdiff_t(n));
        for (std::size_t at = 0; at < std::min<std::size_t>(64, whole.size()); ++at) {
            Bytes changed = whole;
            changed[at] ^= 0x5A;
            variants.push_back(std::move(changed));
        }
        for (std::size_t k = 0; k < variants.size(); ++k) {
            const auto& bytes = variants[k];
            // A damaged copy whose first bytes no longer name the format is
            // refused by sniffing before the structural check ever runs.
            if (format_of(bytes) != format) continue;
            auto theirs = vips_verdict(format, bytes);
            auto ours = our_verdict(format, bytes);
            ++compared;
            refused += !theirs.valid;
            EXPECT_EQ(ours, theirs) << file.filename().string() << " variant " << k << " ("
                                    << bytes.size() << " of " << whole.size() << " bytes)";
        }
    }
    // The variants exercise both answers, not only one.
    EXPECT_GT(compared, 1000);
    EXPECT_GT(refused, 100);
    EXPECT_LT(refused, compared);
}

}  // namespace
}  // namespace litchi
