#include "fetch/probe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/image_header.hpp"
#include "fetch/vips_library.hpp"

namespace litchi {
namespace {

ProbeResult refuse(FailureReason reason, ImageFormat format, std::string detail) {
    ProbeResult r;
    r.reason = reason;
    r.format = format;
    r.detail = std::move(detail);
    return r;
}

std::string dims(std::uint64_t w, std::uint64_t h) {
    return std::to_string(w) + "x" + std::to_string(h);
}

// A whole file's bytes, for the structural check. Small files (nearly all
// images) are read into a buffer each probe thread keeps and reuses, so a
// probe costs no allocation; larger ones are mapped, so only the pages the
// check touches (headers, chunk and frame boundaries) are read.
class FileBytes {
  public:
    static constexpr std::size_t kReadLimit = 256 * 1024;

    explicit FileBytes(int fd) {
        struct stat st {};
        if (::fstat(fd, &st) != 0 || st.st_size < 0) {
            error_ = errno;
            return;
        }
        const auto size = std::size_t(st.st_size);
        if (size > kReadLimit) {
            void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                error_ = errno;
                return;
            }
            map_ = p;
            bytes_ = std::span(static_cast<const unsigned char*>(p), size);
            return;
        }
        thread_local std::vector<unsigned char> buffer;
        if (buffer.size() < size) buffer.resize(std::max(size, std::size_t(64 * 1024)));
        std::size_t got = 0;
        while (got < size) {
            ssize_t n = ::pread(fd, buffer.data() + got, size - got, off_t(got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                error_ = errno;
                return;
            }
            if (n == 0) break;
            got += std::size_t(n);
        }
        bytes_ = std::span<const unsigned char>(buffer.data(), got);
    }
    ~FileBytes() {
        if (map_) ::munmap(map_, bytes_.size());
    }
    FileBytes(const FileBytes&) = delete;
    FileBytes& operator=(const FileBytes&) = delete;

    int error() const { return error_; }
    std::span<const unsigned char> bytes() const { return bytes_; }

  private:
    std::span<const unsigned char> bytes_;
    void* map_ = nullptr;
    int error_ = 0;
};

// libvips, or null with `what` and why it could not be loaded in `why`.
const VipsLibrary* loaded_vips(const char* what, std::string& why) {
    try {
        return &vips_library();
    } catch (const std::runtime_error& e) {
        why = std::string(what) + ": " + e.what();
        return nullptr;
    }
}

std::string vips_failure(const VipsLibrary& vips, const char* what) {
    std::string why = vips.error_buffer();
    vips.error_clear();
    while (!why.empty() && why.back() == '\n') why.pop_back();
    if (why.empty()) why = "no decoder accepts the file";
    return std::string(what) + ": " + why.substr(0, 200);
}

bool multi_page(ImageFormat format) {
    return format == ImageFormat::gif || format == ImageFormat::webp ||
           format == ImageFormat::tiff || format == ImageFormat::avif ||
           format == ImageFormat::heic;
}

// Opens the file with the loader the sniffed format names: vips never
// guesses (which would try every loader in turn) and never reaches an
// untrusted one. `decode`: every page, failing on truncated or corrupt data.
// These loaders are lazy: until pixels are asked for, only the header is read.
VipsImage* vips_open(const VipsLibrary& vips, int fd, ImageFormat format, bool decode) {
    VipsSource* source = vips.source_new_from_descriptor(fd);  // dups fd; reads from the start
    if (!source) return nullptr;
    VipsImage* image = nullptr;
    constexpr auto seq = VIPS_ACCESS_SEQUENTIAL;
    const VipsFailOn fail_on = decode ? VIPS_FAIL_ON_ERROR : VIPS_FAIL_ON_NONE;
    const int pages = decode && multi_page(format) ? -1 : 1;
    switch (format) {
        case ImageFormat::jpeg:
            vips.jpegload_source(source, &image, "access", seq, "fail_on", fail_on, nullptr);
            break;
        case ImageFormat::png:
            vips.pngload_source(source, &image, "access", seq, "fail_on", fail_on, nullptr);
            break;
        case ImageFormat::gif:
            vips.gifload_source(source, &image, "access", seq, "fail_on", fail_on, "n", pages,
                                nullptr);
            break;
        case ImageFormat::webp:
            vips.webpload_source(source, &image, "access", seq, "fail_on", fail_on, "n", pages,
                                 nullptr);
            break;
        case ImageFormat::tiff:
            vips.tiffload_source(source, &image, "access", seq, "fail_on", fail_on, "n", pages,
                                 nullptr);
            break;
        case ImageFormat::avif:
        case ImageFormat::heic:
            vips.heifload_source(source, &image, "access", seq, "fail_on", fail_on, "n", pages,
                                 nullptr);
            break;
        default:
            break;
    }
    vips.object_unref(source);
    return image;
}

// Every pixel of every page, through libvips, in strips (sequential access:
// memory stays bounded by the width, not the height).
std::string decode_all(int fd, ImageFormat format) {
    std::string why;
    const VipsLibrary* vips = loaded_vips("decode", why);
    if (!vips) return why;
    VipsImage* image = vips_open(*vips, fd, format, /*decode=*/true);
    if (!image) return vips_failure(*vips, "decode");
    double mean = 0;
    const int rc = vips->avg(image, &mean, nullptr);
    vips->object_unref(image);
    if (rc != 0) return vips_failure(*vips, "decode");
    return {};
}

}  // namespace

ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels, VerifyMode verify) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return refuse(FailureReason::io, ImageFormat::unknown,
                      std::string("open: ") + std::strerror(errno));
    auto r = probe_image_fd(fd, head, max_pixels, verify);
    ::close(fd);
    return r;
}

namespace {

// Both probes after the sniff: `bytes` is the whole file, `fd` the same file
// for libvips.
ProbeResult probe_whole(int fd, ImageFormat sniffed, std::span<const unsigned char> bytes,
                        std::uint64_t max_pixels, VerifyMode verify) {
    // The declared size decides bombs before any decoder allocates for them.
    auto declared =
        read_declared_size(sniffed, bytes.first(std::min(bytes.size(), kDeclaredSizeBytes)));
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

    ProbeResult r;
    r.format = sniffed;
    if (auto structure = check_image_structure(sniffed, bytes)) {
        if (!structure->valid) return refuse(FailureReason::not_image, sniffed, structure->problem);
        r.width = int(std::min<std::uint64_t>(structure->width, INT32_MAX));
        r.height = int(std::min<std::uint64_t>(structure->height, INT32_MAX));
        r.pages = int(structure->pages);
    } else {
        std::string why;
        const VipsLibrary* vips = loaded_vips("header unreadable", why);
        if (!vips) return refuse(FailureReason::not_image, sniffed, std::move(why));
        VipsImage* image = vips_open(*vips, fd, sniffed, /*decode=*/false);
        if (!image)
            return refuse(FailureReason::not_image, sniffed,
                          vips_failure(*vips, "header unreadable"));
        r.width = vips->image_get_width(image);
        r.height = vips->image_get_height(image);
        // For a multi-page file vips reports the first page's height; every page counts.
        r.pages = std::max(1, vips->image_get_n_pages(image));
        vips->object_unref(image);
    }
    if (r.width <= 0 || r.height <= 0)
        return refuse(FailureReason::not_image, sniffed, "image with no pixels");
    std::uint64_t pixels =
        std::uint64_t(r.width) * std::uint64_t(r.height) * std::uint64_t(r.pages);
    if (pixels > max_pixels) {
        r.reason = FailureReason::too_many_pixels;
        r.detail = std::to_string(r.width) + "x" + std::to_string(r.height) + "x" +
                   std::to_string(r.pages) + " pages is over the pixel limit";
        return r;
    }
    // libvips reads BMP only through ImageMagick, which VIPS_BLOCK_UNTRUSTED
    // blocks (rightly): for BMP the header is all there is to check.
    if (verify == VerifyMode::decode && sniffed != ImageFormat::bmp) {
        if (auto failure = decode_all(fd, sniffed); !failure.empty())
            return refuse(FailureReason::not_image, sniffed, std::move(failure));
    }
    return r;
}

}  // namespace

ProbeResult probe_image_fd(int fd, std::span<const unsigned char> head, std::uint64_t max_pixels,
                           VerifyMode verify) {
    ImageFormat sniffed = sniff_image(head);
    if (sniffed == ImageFormat::unknown)
        return refuse(FailureReason::not_image, sniffed, "content is not a supported image format");
    FileBytes file(fd);
    if (file.error() != 0)
        return refuse(FailureReason::io, sniffed,
                      std::string("read: ") + std::strerror(file.error()));
    return probe_whole(fd, sniffed, file.bytes(), max_pixels, verify);
}

ProbeResult probe_image_bytes(int fd, std::span<const unsigned char> bytes,
                              std::uint64_t max_pixels, VerifyMode verify) {
    ImageFormat sniffed = sniff_image(bytes.first(std::min(bytes.size(), kSniffBytes)));
    if (sniffed == ImageFormat::unknown)
        return refuse(FailureReason::not_image, sniffed, "content is not a supported image format");
    return probe_whole(fd, sniffed, bytes, max_pixels, verify);
}

}  // namespace litchi
