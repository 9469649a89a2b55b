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
#include "fetch/vips_library.hpp"

namespace litchi {
namespace {

const bool kInit =
    (init_fetch_libraries("fetch_image_structure_test"), ensure_image_library(), true);

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

Bytes from_hex(const std::string& hex) {
    Bytes out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

// Found by fuzzing (issue 10): a graphic control and an application
// extension whose block size byte is 0. libnsgif (inside libvips) reads that
// byte as the size of a block to skip and then sub-blocks up to a terminator,
// as the GIF grammar has it; the gate used to take the 0 for the terminator,
// read the wrong bytes as the first frame and judged a 65345x65535 canvas
// where the decoder allocates 31295x70249. Both readers now follow libnsgif.
TEST(ImageStructureTest, GifExtensionWithBlockSizeZeroIsReadAsLibnsgifDoes) {
    ASSERT_TRUE(kInit);
    auto gif = from_hex(
        "4749463839610700030000000021ff0021f9002c0800000039ffffffffffffffff21ff0021f900260800"
        "0000070000030000002c000400213f7669f1010012070000030000002c000400217669f101001200");
    auto theirs = vips_verdict(ImageFormat::gif, gif);
    EXPECT_EQ(theirs, (Verdict{true, 31295, 70249, 1}));
    EXPECT_EQ(our_verdict(ImageFormat::gif, gif), theirs);
    auto declared = read_declared_size(ImageFormat::gif, gif);
    ASSERT_TRUE(declared);
    EXPECT_EQ(declared->width, 31295u);
    EXPECT_EQ(declared->height, 70249u);
}

class ProbeFileTest : public ::testing::Test {
  protected:
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("litchi-structure-" + std::to_string(::getpid()));
    void SetUp() override {
        ASSERT_TRUE(kInit);
        std::filesystem::create_directories(dir);
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    ProbeResult probe(const Bytes& bytes, VerifyMode verify) {
        auto file = dir / "x.part";
        std::ofstream(file, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        return probe_image_file(file, std::span(bytes.data(), std::min(bytes.size(), kSniffBytes)),
                                100'000'000, verify);
    }
};

// Over 256 KiB of APP segments (ICC profiles, XMP) before the frame header:
// the check reads the whole file (mapped, past its read buffer), not a head.
TEST_F(ProbeFileTest, JpegWithLargeSegmentsBeforeTheFrameHeader) {
    auto jpg = read_file(std::filesystem::path(LITCHI_TEST_IMAGES) / "exif-baseline.jpg");
    Bytes big(jpg.begin(), jpg.begin() + 2);
    for (int k = 0; k < 5; ++k) {  // five APP2 segments of 65533 payload bytes
        big.insert(big.end(), {0xFF, 0xE2, 0xFF, 0xFF});
        big.insert(big.end(), 65533, static_cast<unsigned char>('a' + k));
    }
    big.insert(big.end(), jpg.begin() + 2, jpg.end());
    ASSERT_GT(big.size(), 320'000u);
    EXPECT_EQ(our_verdict(ImageFormat::jpeg, big), vips_verdict(ImageFormat::jpeg, big));
    auto r = probe(big, VerifyMode::header);
    EXPECT_EQ(r.reason, FailureReason::none) << r.detail;
    EXPECT_EQ(r.format, ImageFormat::jpeg);
    EXPECT_EQ(r.width, 48);
    EXPECT_EQ(r.height, 32);
    r = probe(big, VerifyMode::decode);
    EXPECT_EQ(r.reason, FailureReason::none) << r.detail;
}

// Every real file passes both modes with the size and pages libvips reports.
TEST_F(ProbeFileTest, RealFilesPassHeaderAndDecode) {
    for (const auto& file : corpus()) {
        SCOPED_TRACE(file.filename().string());
        auto bytes = read_file(file);
        auto theirs = vips_verdict(format_of(bytes), bytes);
        for (auto mode : {VerifyMode::header, VerifyMode::decode}) {
            auto r = probe(bytes, mode);
            EXPECT_EQ(r.reason, FailureReason::none) << r.detail;
            EXPECT_EQ(r.format, format_of(bytes));
            EXPECT_EQ((Verdict{true, std::uint64_t(r.width), std::uint64_t(r.height),
                               std::uint32_t(r.pages)}),
                      theirs);
        }
    }
}

// A file cut inside its pixel data has a whole header: `header` takes it (as
// a libvips header open did), `decode` finds the missing pixels.
TEST_F(ProbeFileTest, DecodeFindsPixelsTheHeaderCannot) {
    for (const char* name : {"progressive.jpg", "exif-baseline.jpg", "rgb.png", "interlaced.png"}) {
        SCOPED_TRACE(name);
        auto whole = read_file(std::filesystem::path(LITCHI_TEST_IMAGES) / name);
        Bytes cut(whole.begin(), whole.begin() + std::ptrdiff_t(whole.size() * 3 / 4));
        EXPECT_TRUE(vips_verdict(format_of(cut), cut).valid);  // libvips's header read takes it too
        auto header = probe(cut, VerifyMode::header);
        EXPECT_EQ(header.reason, FailureReason::none) << header.detail;
        auto decode = probe(cut, VerifyMode::decode);
        EXPECT_EQ(decode.reason, FailureReason::not_image);
        EXPECT_EQ(decode.detail.rfind("decode: ", 0), 0u) << decode.detail;
    }
}

// The structural check refuses with a reason a user can read.
TEST_F(ProbeFileTest, BrokenStructureIsNotAnImageWithItsReason) {
    auto png = read_file(std::filesystem::path(LITCHI_TEST_IMAGES) / "rgb.png");
    png[23] ^= 0x01;  // the height 32 becomes 33: the IHDR CRC no longer matches
    auto r = probe(png, VerifyMode::header);
    EXPECT_EQ(r.reason, FailureReason::not_image);
    EXPECT_EQ(r.detail, "PNG IHDR CRC mismatch");
    auto webp = read_file(std::filesystem::path(LITCHI_TEST_IMAGES) / "animated.webp");
    webp.resize(webp.size() - 100);
    r = probe(webp, VerifyMode::header);
    EXPECT_EQ(r.reason, FailureReason::not_image);
    EXPECT_EQ(r.detail, "WebP cut short: the file is smaller than its RIFF size");
}

}  // namespace
}  // namespace litchi
