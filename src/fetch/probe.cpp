#include "fetch/probe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include <cerrno>
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

std::vector<unsigned char> read_head(int fd, std::size_t max) {
    // Only as much as the file holds: most images are far smaller than max.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size >= 0) max = std::min(max, std::size_t(st.st_size));
    std::vector<unsigned char> buf(max);
    std::size_t got = 0;
    while (got < max) {
        ssize_t n = ::pread(fd, buf.data() + got, max - got, off_t(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += std::size_t(n);
    }
    buf.resize(got);
    return buf;
}

std::string dims(std::uint64_t w, std::uint64_t h) {
    return std::to_string(w) + "x" + std::to_string(h);
}

}  // namespace

ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return refuse(FailureReason::io, ImageFormat::unknown,
                      std::string("open: ") + std::strerror(errno));
    auto r = probe_image_fd(fd, head, max_pixels);
    ::close(fd);
    return r;
}

ProbeResult probe_image_fd(int fd, std::span<const unsigned char> head, std::uint64_t max_pixels) {
    ImageFormat sniffed = sniff_image(head);
    if (sniffed == ImageFormat::unknown)
        return refuse(FailureReason::not_image, sniffed, "content is not a supported image format");
    // The declared size decides bombs before any decoder allocates for them.
    auto header = read_head(fd, kDeclaredSizeBytes);
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

    // The sniffed format picks the loader: vips never guesses (which would
    // try every loader in turn) and never reaches an untrusted one.
    VipsImage* image = nullptr;
    VipsSource* source = vips_source_new_from_descriptor(fd);  // dups fd; reads from the start
    if (!source) {
        vips_error_clear();
        return refuse(FailureReason::io, sniffed, "cannot read the downloaded file");
    }
    int rc = -1;
    constexpr auto seq = VIPS_ACCESS_SEQUENTIAL;
    switch (sniffed) {
        case ImageFormat::jpeg:
            rc = vips_jpegload_source(source, &image, "access", seq, nullptr);
            break;
        case ImageFormat::png:
            rc = vips_pngload_source(source, &image, "access", seq, nullptr);
            break;
        case ImageFormat::gif:
            rc = vips_gifload_source(source, &image, "access", seq, nullptr);
            break;
        case ImageFormat::webp:
            rc = vips_webpload_source(source, &image, "access", seq, nullptr);
            break;
        case ImageFormat::tiff:
            rc = vips_tiffload_source(source, &image, "access", seq, nullptr);
            break;
        case ImageFormat::avif:
        case ImageFormat::heic:
            rc = vips_heifload_source(source, &image, "access", seq, nullptr);
            break;
        default:
            break;
    }
    g_object_unref(source);
    // These loaders are lazy: only the header has been read so far.
    if (rc != 0 || !image) {
        std::string why = vips_error_buffer();
        vips_error_clear();
        while (!why.empty() && why.back() == '\n') why.pop_back();
        if (why.empty()) why = "no decoder accepts the header";
        return refuse(FailureReason::not_image, sniffed,
                      "header unreadable: " + why.substr(0, 200));
    }
    ProbeResult r;
    r.format = sniffed;
    r.width = vips_image_get_width(image);
    r.height = vips_image_get_height(image);
    r.pages = std::max(1, vips_image_get_n_pages(image));
    // For a multi-page file vips reports the first page's height; every page counts.
    g_object_unref(image);
    if (r.width <= 0 || r.height <= 0)
        return refuse(FailureReason::not_image, sniffed, "image with no pixels");
    std::uint64_t pixels =
        std::uint64_t(r.width) * std::uint64_t(r.height) * std::uint64_t(r.pages);
    if (pixels > max_pixels) {
        r.reason = FailureReason::too_many_pixels;
        r.detail = std::to_string(r.width) + "x" + std::to_string(r.height) + "x" +
                   std::to_string(r.pages) + " pages is over the pixel limit";
    }
    return r;
}

}  // namespace litchi
