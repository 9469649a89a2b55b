#include "core/image_header.hpp"

#include <algorithm>

namespace litchi {
namespace {

std::uint32_t be16(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 8) | p[1];
}
std::uint32_t be32(const unsigned char* p) {
    return (be16(p) << 16) | be16(p + 2);
}
std::uint32_t le16(const unsigned char* p) {
    return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8);
}
std::uint32_t le24(const unsigned char* p) {
    return le16(p) | (std::uint32_t(p[2]) << 16);
}
std::uint32_t le32(const unsigned char* p) {
    return le16(p) | (le16(p + 2) << 16);
}

std::optional<DeclaredSize> png(std::span<const unsigned char> d) {
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4).
    if (d.size() < 24 || d[12] != 'I' || d[13] != 'H' || d[14] != 'D' || d[15] != 'R')
        return std::nullopt;
    return DeclaredSize{be32(d.data() + 16), be32(d.data() + 20)};
}

// Skips GIF data sub-blocks (a size byte, that many bytes; a zero size ends
// them) from `i`; the offset after them, or d.size() when they run past the end.
std::size_t skip_sub_blocks(std::span<const unsigned char> d, std::size_t i) {
    while (i < d.size() && d[i] != 0) i += 1 + std::size_t(d[i]);
    return std::min(i + 1, d.size());
}

std::optional<DeclaredSize> gif(std::span<const unsigned char> d) {
    if (d.size() < 10) return std::nullopt;
    DeclaredSize size{le16(d.data() + 6), le16(d.data() + 8)};
    // A frame may reach past the logical screen, and decoders (libvips's
    // libnsgif) grow the canvas to hold it: the size that decides is the
    // screen and every frame the head shows, whichever is larger.
    if (d.size() < 13) return size;
    std::size_t i = 13;
    if (d[10] & 0x80) i += 3u << ((d[10] & 7) + 1);  // global colour table
    while (i < d.size()) {
        if (d[i] == 0x21) {  // extension: label, then sub-blocks
            i = skip_sub_blocks(d, i + 2);
        } else if (d[i] == 0x2C && i + 10 <= d.size()) {  // image descriptor
            const unsigned char* f = d.data() + i + 1;
            size.width = std::max<std::uint64_t>(size.width, le16(f) + le16(f + 4));
            size.height = std::max<std::uint64_t>(size.height, le16(f + 2) + le16(f + 6));
            i += 10;
            if (f[8] & 0x80) i += 3u << ((f[8] & 7) + 1);  // local colour table
            i = skip_sub_blocks(d, i + 1);                 // LZW code size, then data
        } else if (d[i] == 0x3B) {
            break;  // the trailer
        } else {
            // A stray byte between blocks (a block terminator too many, junk):
            // libnsgif reads on past it to the next frame, so the gate does too.
            ++i;
        }
    }
    return size;
}

std::optional<DeclaredSize> jpeg(std::span<const unsigned char> d) {
    std::size_t i = 2;
    while (i + 4 <= d.size()) {
        if (d[i] != 0xFF) return std::nullopt;
        unsigned marker = d[i + 1];
        if (marker == 0xFF) {  // fill byte
            ++i;
            continue;
        }
        if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
            i += 2;
            continue;
        }
        std::uint32_t len = be16(d.data() + i + 2);
        if (len < 2) return std::nullopt;
        bool sof =
            marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
        if (sof) {
            if (i + 9 > d.size()) return std::nullopt;
            return DeclaredSize{be16(d.data() + i + 7), be16(d.data() + i + 5)};
        }
        if (marker == 0xDA || marker == 0xD9)
            return std::nullopt;  // scan data before any frame header
        i += 2 + len;
    }
    return std::nullopt;
}

std::optional<DeclaredSize> webp(std::span<const unsigned char> d) {
    if (d.size() < 30) return std::nullopt;
    const unsigned char* c = d.data() + 12;
    if (c[0] == 'V' && c[1] == 'P' && c[2] == '8' && c[3] == ' ')
        return DeclaredSize{le16(c + 14) & 0x3FFF, le16(c + 16) & 0x3FFF};
    if (c[0] == 'V' && c[1] == 'P' && c[2] == '8' && c[3] == 'L') {
        std::uint32_t bits = le32(c + 9);
        return DeclaredSize{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
    }
    if (c[0] == 'V' && c[1] == 'P' && c[2] == '8' && c[3] == 'X')
        return DeclaredSize{std::uint64_t(le24(c + 12)) + 1, std::uint64_t(le24(c + 15)) + 1};
    return std::nullopt;
}

std::optional<DeclaredSize> bmp(std::span<const unsigned char> d) {
    if (d.size() < 26) return std::nullopt;
    std::uint32_t dib = le32(d.data() + 14);
    if (dib == 12) return DeclaredSize{le16(d.data() + 18), le16(d.data() + 20)};
    auto w = std::int32_t(le32(d.data() + 18));
    auto h = std::int32_t(le32(d.data() + 22));
    auto mag = [](std::int32_t v) {
        return v < 0 ? std::uint64_t(-std::int64_t(v)) : std::uint64_t(v);
    };
    return DeclaredSize{mag(w), mag(h)};
}

}  // namespace

std::optional<DeclaredSize> read_declared_size(ImageFormat format,
                                               std::span<const unsigned char> head) {
    switch (format) {
        case ImageFormat::png:
            return png(head);
        case ImageFormat::gif:
            return gif(head);
        case ImageFormat::jpeg:
            return jpeg(head);
        case ImageFormat::webp:
            return webp(head);
        case ImageFormat::bmp:
            return bmp(head);
        default:
            return std::nullopt;
    }
}

}  // namespace litchi
