#include "fetch/probe.hpp"

#include <vips/vips.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace litchi {
namespace {

ProbeResult refuse(FailureReason reason, ImageFormat format, std::string detail) {
    ProbeResult r;
    r.reason = reason;
    r.format = format;
    r.detail = std::move(detail);
    return r;
}

// The loaders we trust for each accepted format. Anything else vips might
// pick (matrix, csv, magick, ...) means the bytes are not what they claim.
bool loader_matches(std::string_view loader, ImageFormat format) {
    auto starts = [&](std::string_view prefix) { return loader.substr(0, prefix.size()) == prefix; };
    switch (format) {
        case ImageFormat::jpeg: return starts("VipsForeignLoadJpeg");
        case ImageFormat::png: return starts("VipsForeignLoadPng") || starts("VipsForeignLoadSpng");
        case ImageFormat::gif: return starts("VipsForeignLoadNsgif") || starts("VipsForeignLoadGif");
        case ImageFormat::webp: return starts("VipsForeignLoadWebp");
        case ImageFormat::tiff: return starts("VipsForeignLoadTiff");
        case ImageFormat::avif:
        case ImageFormat::heic: return starts("VipsForeignLoadHeif");
        default: return false;
    }
}

std::int32_t le32(const unsigned char* p) {
    return std::int32_t(std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) |
                        (std::uint32_t(p[3]) << 24));
}

// libvips reads BMP only through ImageMagick, which VIPS_BLOCK_UNTRUSTED
// blocks (rightly). The BMP header is simple enough to read directly.
ProbeResult probe_bmp(std::span<const unsigned char> head, std::uint64_t max_pixels) {
    if (head.size() < 26) return refuse(FailureReason::not_image, ImageFormat::bmp, "BMP header truncated");
    std::uint32_t dib = std::uint32_t(le32(head.data() + 14));
    std::int64_t w = 0, h = 0;
    if (dib == 12) {
        w = head[18] | (head[19] << 8);
        h = head[20] | (head[21] << 8);
    } else {
        w = le32(head.data() + 18);
        h = le32(head.data() + 22);
        if (h < 0) h = -h;  // top-down bitmap
    }
    if (w <= 0 || h <= 0) return refuse(FailureReason::not_image, ImageFormat::bmp, "BMP with no pixels");
    ProbeResult r;
    r.format = ImageFormat::bmp;
    r.width = int(std::min<std::int64_t>(w, INT32_MAX));
    r.height = int(std::min<std::int64_t>(h, INT32_MAX));
    r.pages = 1;
    if (std::uint64_t(w) * std::uint64_t(h) > max_pixels)
        return refuse(FailureReason::too_many_pixels, ImageFormat::bmp,
                      std::to_string(w) + "x" + std::to_string(h) + " is over the pixel limit");
    return r;
}

}  // namespace

ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels) {
    ImageFormat sniffed = sniff_image(head);
    if (sniffed == ImageFormat::unknown)
        return refuse(FailureReason::not_image, sniffed, "content is not a supported image format");
    if (sniffed == ImageFormat::bmp) return probe_bmp(head, max_pixels);

    const char* loader = vips_foreign_find_load(file.c_str());
    if (!loader || !loader_matches(loader, sniffed)) {
        vips_error_clear();
        return refuse(FailureReason::not_image, sniffed, "no trusted decoder accepts the file");
    }
    // Lazy open: reads the header only. No pixels are decoded here.
    VipsImage* image = vips_image_new_from_file(file.c_str(), "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
    if (!image) {
        std::string why = vips_error_buffer();
        vips_error_clear();
        while (!why.empty() && (why.back() == '\n')) why.pop_back();
        return refuse(FailureReason::not_image, sniffed, "header unreadable: " + why.substr(0, 200));
    }
    ProbeResult r;
    r.format = sniffed;
    r.width = vips_image_get_width(image);
    r.height = vips_image_get_height(image);
    r.pages = std::max(1, vips_image_get_n_pages(image));
    // For a multi-page file vips reports the first page's height; every page counts.
    g_object_unref(image);
    if (r.width <= 0 || r.height <= 0) return refuse(FailureReason::not_image, sniffed, "image with no pixels");
    std::uint64_t pixels = std::uint64_t(r.width) * std::uint64_t(r.height) * std::uint64_t(r.pages);
    if (pixels > max_pixels) {
        r.reason = FailureReason::too_many_pixels;
        r.detail = std::to_string(r.width) + "x" + std::to_string(r.height) + "x" + std::to_string(r.pages) +
                   " pages is over the pixel limit";
    }
    return r;
}

}  // namespace litchi
