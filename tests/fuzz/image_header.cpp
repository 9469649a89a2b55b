// Fuzz target: magic-byte sniffing and the declared-size readers
// (core/image_format.hpp, core/image_header.hpp): the pixel-bomb gate reads a
// file's first bytes before any decoder does.
//
// Input: a file's first bytes. Every format's reader runs on them (not only
// the sniffed one). Where the sniffed format's reader and libvips's own header
// read both answer, they must give the same size for PNG, GIF and JPEG (the
// formats whose header we read the way the decoder does), so the gate judges
// the pixels the decoder will allocate.
//
// The input is also a whole file to the structural check (check_image_structure),
// which the probe uses in place of a libvips header open for PNG, JPEG, GIF and
// WebP: it must agree with libvips on whether the file opens, and on its width,
// height and page count.
#include "core/image_header.hpp"

#include <vips/vips.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "core/image_format.hpp"

using namespace litchi;

namespace {

bool start_vips() {
    if (VIPS_INIT("fuzz_image_header") != 0) std::abort();
    vips_block_untrusted_set(TRUE);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_concurrency_set(1);
    return true;
}

// What libvips says the image's size is, from its header alone (the loaders are lazy).
bool vips_size(ImageFormat format, const std::uint8_t* data, std::size_t size, int& width,
               int& height, int* pages = nullptr) {
    static const bool started = start_vips();
    (void)started;
    VipsImage* image = nullptr;
    int rc = -1;
    void* buf = const_cast<std::uint8_t*>(data);
    switch (format) {
        case ImageFormat::png:
            rc = vips_pngload_buffer(buf, size, &image, nullptr);
            break;
        case ImageFormat::gif:
            rc = vips_gifload_buffer(buf, size, &image, nullptr);
            break;
        case ImageFormat::jpeg:
            rc = vips_jpegload_buffer(buf, size, &image, nullptr);
            break;
        case ImageFormat::webp:
            if (!pages) return false;  // the declared-size check covers PNG, GIF, JPEG
            rc = vips_webpload_buffer(buf, size, &image, nullptr);
            break;
        default:
            return false;
    }
    vips_error_clear();
    if (rc != 0 || !image) return false;
    width = vips_image_get_width(image);
    height = vips_image_get_height(image);
    if (pages) *pages = std::max(1, vips_image_get_n_pages(image));
    g_object_unref(image);
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const unsigned char> head(data, size);
    const ImageFormat sniffed = sniff_image(head.first(std::min(size, kSniffBytes)));
    (void)mime_type(sniffed);
    (void)extension(sniffed);
    if (sniffed != ImageFormat::unknown) {
        auto name = format_name(sniffed);
        if (parse_format_name(name) != sniffed) std::abort();
    }
    for (auto format : {ImageFormat::unknown, ImageFormat::jpeg, ImageFormat::png, ImageFormat::gif,
                        ImageFormat::webp, ImageFormat::bmp, ImageFormat::tiff, ImageFormat::avif,
                        ImageFormat::heic})
        (void)read_declared_size(format, head);

    auto declared = read_declared_size(sniffed, head.first(std::min(size, kDeclaredSizeBytes)));
    int width = 0, height = 0;
    // A declared zero is refused by the gate itself (fetch/probe.cpp: "image
    // declares no pixels"), whatever a decoder would make of it.
    const bool refused = declared && (declared->width == 0 || declared->height == 0);
    if (declared && !refused && vips_size(sniffed, data, size, width, height)) {
        // GIF: libnsgif takes some screen sizes for mistakes (0, 640x480, over
        // 2048, ...) and uses the frames' instead, so there the gate may see
        // more than the decoder, never less.
        const bool gif = sniffed == ImageFormat::gif;
        const bool under =
            declared->width < std::uint64_t(width) || declared->height < std::uint64_t(height);
        const bool differ =
            declared->width != std::uint64_t(width) || declared->height != std::uint64_t(height);
        if (gif ? under : differ) {
            std::fprintf(stderr, "image_header: %s declares %llux%llu, libvips reads %dx%d\n",
                         std::string(format_name(sniffed)).c_str(),
                         static_cast<unsigned long long>(declared->width),
                         static_cast<unsigned long long>(declared->height), width, height);
            std::abort();
        }
    }

    if (sniffed == ImageFormat::png || sniffed == ImageFormat::jpeg ||
        sniffed == ImageFormat::gif || sniffed == ImageFormat::webp) {
        auto structure = check_image_structure(sniffed, head);
        int pages = 0;
        const bool opens = vips_size(sniffed, data, size, width, height, &pages);
        const bool ours = structure && structure->valid;
        if (ours != opens || (opens && (structure->width != std::uint64_t(width) ||
                                        structure->height != std::uint64_t(height) ||
                                        structure->pages != std::uint32_t(pages)))) {
            std::fprintf(stderr,
                         "image_header: %s structure says %s %llux%llu x%u, libvips %s %dx%d x%d\n",
                         std::string(format_name(sniffed)).c_str(),
                         ours        ? "image"
                         : structure ? structure->problem
                                     : "unchecked",
                         static_cast<unsigned long long>(structure ? structure->width : 0),
                         static_cast<unsigned long long>(structure ? structure->height : 0),
                         structure ? structure->pages : 0u, opens ? "opens" : "refuses", width,
                         height, pages);
            std::abort();
        }
    }
    return 0;
}
