#include "core/image_format.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace litchi {
namespace {

bool starts_with(std::span<const unsigned char> data, std::string_view magic, std::size_t at = 0) {
    if (data.size() < at + magic.size()) return false;
    return std::memcmp(data.data() + at, magic.data(), magic.size()) == 0;
}

// ISO BMFF (HEIF family): "ftyp" box at offset 4, major brand then compatible brands.
ImageFormat sniff_bmff(std::span<const unsigned char> d) {
    if (!starts_with(d, "ftyp", 4) || d.size() < 16) return ImageFormat::unknown;
    std::size_t box = (std::size_t(d[0]) << 24) | (std::size_t(d[1]) << 16) |
                      (std::size_t(d[2]) << 8) | std::size_t(d[3]);
    if (box < 16) return ImageFormat::unknown;
    std::size_t end = std::min(box, d.size());
    auto brand_at = [&](std::size_t off) {
        return std::string_view(reinterpret_cast<const char*>(d.data() + off), 4);
    };
    bool heic = false;
    // Major brand at 8, minor version at 12, compatible brands from 16.
    for (std::size_t off = 8; off + 4 <= end; off += 4) {
        if (off == 12) continue;
        auto b = brand_at(off);
        if (b == "avif" || b == "avis") return ImageFormat::avif;
        if (b == "heic" || b == "heix" || b == "heim" || b == "heis" || b == "hevc" ||
            b == "hevx" || b == "mif1" || b == "msf1")
            heic = true;
    }
    return heic ? ImageFormat::heic : ImageFormat::unknown;
}

}  // namespace

std::string_view extension(ImageFormat format) {
    switch (format) {
        case ImageFormat::jpeg:
            return "jpg";
        case ImageFormat::png:
            return "png";
        case ImageFormat::gif:
            return "gif";
        case ImageFormat::webp:
            return "webp";
        case ImageFormat::bmp:
            return "bmp";
        case ImageFormat::tiff:
            return "tiff";
        case ImageFormat::avif:
            return "avif";
        case ImageFormat::heic:
            return "heic";
        case ImageFormat::unknown:
            break;
    }
    return "bin";
}

std::string_view mime_type(ImageFormat format) {
    switch (format) {
        case ImageFormat::jpeg:
            return "image/jpeg";
        case ImageFormat::png:
            return "image/png";
        case ImageFormat::gif:
            return "image/gif";
        case ImageFormat::webp:
            return "image/webp";
        case ImageFormat::bmp:
            return "image/bmp";
        case ImageFormat::tiff:
            return "image/tiff";
        case ImageFormat::avif:
            return "image/avif";
        case ImageFormat::heic:
            return "image/heic";
        case ImageFormat::unknown:
            break;
    }
    return "application/octet-stream";
}

std::optional<ImageFormat> parse_extension(std::string_view ext) {
    for (auto f : {ImageFormat::jpeg, ImageFormat::png, ImageFormat::gif, ImageFormat::webp,
                   ImageFormat::bmp, ImageFormat::tiff, ImageFormat::avif, ImageFormat::heic})
        if (extension(f) == ext) return f;
    return std::nullopt;
}

std::string_view format_name(ImageFormat format) {
    return format == ImageFormat::jpeg ? std::string_view("jpeg") : extension(format);
}

std::optional<ImageFormat> parse_format_name(std::string_view name) {
    if (name == "jpeg") return ImageFormat::jpeg;
    if (name == "jpg") return std::nullopt;
    return parse_extension(name);
}

ImageFormat sniff_image(std::span<const unsigned char> d) {
    if (starts_with(d, "\xFF\xD8\xFF")) return ImageFormat::jpeg;
    if (starts_with(d, "\x89PNG\r\n\x1A\n")) return ImageFormat::png;
    if (starts_with(d, "GIF87a") || starts_with(d, "GIF89a")) return ImageFormat::gif;
    if (starts_with(d, "RIFF") && starts_with(d, "WEBP", 8)) return ImageFormat::webp;
    // BMP: "BM", then a DIB header size we know (12, 40, 52, 56, 64, 108, 124) at offset 14.
    if (starts_with(d, "BM") && d.size() >= 18) {
        unsigned dib = d[14] | (d[15] << 8) | (d[16] << 16) | (unsigned(d[17]) << 24);
        if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 ||
            dib == 124)
            return ImageFormat::bmp;
        return ImageFormat::unknown;
    }
    if (starts_with(d, std::string_view("II*\0", 4)) ||
        starts_with(d, std::string_view("MM\0*", 4)))
        return ImageFormat::tiff;
    return sniff_bmff(d);
}

}  // namespace litchi
