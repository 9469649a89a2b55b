#include "fetch/probe.hpp"

#include <vips/vips.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/image_header.hpp"

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

std::vector<unsigned char> read_head(const std::filesystem::path& file, std::size_t max) {
    std::vector<unsigned char> buf(max);
    std::ifstream in(file, std::ios::binary);
    in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(max));
    buf.resize(std::size_t(in.gcount()));
    return buf;
}

std::string dims(std::uint64_t w, std::uint64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

}  // namespace

ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels) {
    ImageFormat sniffed = sniff_image(head);
    if (sniffed == ImageFormat::unknown)
        return refuse(FailureReason::not_image, sniffed, "content is not a supported image format");
    // The declared size decides bombs before any decoder allocates for them.
    auto header = read_head(file, kDeclaredSizeBytes);
    auto declared = read_declared_size(sniffed, header);
    if (declared) {
        if (declared->width == 0 || declared->height == 0)
            return refuse(FailureReason::not_image, sniffed, "image declares no pixels");
        if (declared->width * declared->height > max_pixels) {
            auto r = refuse(FailureReason::too_many_pixels, sniffed,
                            dims(declared->width, declared->height) + " is over the pixel limit");
            r.width = int(std::min<std::uint64_t>(declared->width, INT32_MAX));
            r.height = int(std::min<std::uint64_t>(declared->height, INT32_MAX));
            return r;
        }
    }
    // libvips reads BMP only through ImageMagick, which VIPS_BLOCK_UNTRUSTED
    // blocks (rightly); the BMP header is all we check.
    if (sniffed == ImageFormat::bmp) {
        if (!declared) return refuse(FailureReason::not_image, sniffed, "BMP header truncated");
        ProbeResult r;
        r.format = sniffed;
        r.width = int(declared->width);
        r.height = int(declared->height);
        r.pages = 1;
        return r;
    }

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
