#include "core/image_header.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

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

// Skips the extension that starts at `i` (0x21, its label, ...). A comment's
// sub-blocks start right after the label; every other label is followed by
// one block whose first byte is its size, then sub-blocks. libnsgif reads
// them so, whatever the size says (a graphic control block of size 0 is
// followed by sub-blocks, not ended by that 0), and it decides the size the
// decoder allocates, so the gate reads them so too.
std::size_t skip_extension(std::span<const unsigned char> d, std::size_t i) {
    if (i + 1 < d.size() && d[i + 1] == 0xFE) return skip_sub_blocks(d, i + 2);
    if (i + 2 >= d.size()) return d.size();
    return skip_sub_blocks(d, i + 3 + std::size_t(d[i + 2]));
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
        if (d[i] == 0x21) {  // extension
            i = skip_extension(d, i);
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

// ---- structural checks ----------------------------------------------------
//
// Each mirrors what libvips's loader (libpng, libjpeg-turbo, libnsgif,
// libwebp's demuxer) reads before it answers a header-only open, and refuses
// what those refuse there: a file that passes here opens in libvips with the
// same size and page count. Where the two differ on purpose it is said.

ImageStructure invalid(const char* problem) {
    ImageStructure s;
    s.problem = problem;
    return s;
}

ImageStructure valid(std::uint64_t width, std::uint64_t height, std::uint32_t pages = 1) {
    ImageStructure s;
    s.valid = true;
    s.width = width;
    s.height = height;
    s.pages = pages;
    return s;
}

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t n = 0; n < 256; ++n) {
        std::uint32_t c = n;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    return table;
}
constexpr auto kCrcTable = make_crc_table();

std::uint32_t crc32(const unsigned char* p, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    while (n--) c = kCrcTable[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

bool png_chunk_is(const unsigned char* type, const char* name) {
    return std::memcmp(type, name, 4) == 0;
}

// libpng's png_read_info: the signature, IHDR first (13 bytes, fields in
// range, CRC), then every chunk up to the first IDAT: critical ones need a
// good CRC (ancillary ones with a bad CRC are dropped, as libpng does), a
// palette image needs PLTE before IDAT, and an unknown critical chunk is
// refused. What follows the first IDAT is pixel data: `decode` reads it.
ImageStructure png_structure(std::span<const unsigned char> d) {
    static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (d.size() < 8 || std::memcmp(d.data(), kSignature, 8) != 0)
        return invalid("PNG signature missing");
    if (d.size() < 33) return invalid("PNG cut short in its header");
    if (be32(d.data() + 8) != 13 || !png_chunk_is(d.data() + 12, "IHDR"))
        return invalid("PNG does not start with a 13-byte IHDR");
    if (crc32(d.data() + 12, 17) != be32(d.data() + 29)) return invalid("PNG IHDR CRC mismatch");
    const unsigned char* h = d.data() + 16;
    const std::uint32_t width = be32(h), height = be32(h + 4);
    const unsigned depth = h[8], colour = h[9];
    if (width == 0 || height == 0 || width > 0x7FFFFFFFu || height > 0x7FFFFFFFu)
        return invalid("PNG IHDR size out of range");
    bool depth_ok = false;
    switch (colour) {
        case 0:
            depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
            break;
        case 3:
            depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8;
            break;
        case 2:
        case 4:
        case 6:
            depth_ok = depth == 8 || depth == 16;
            break;
        default:
            break;
    }
    if (!depth_ok) return invalid("PNG IHDR colour type and bit depth do not go together");
    if (h[10] != 0 || h[11] != 0 || h[12] > 1)
        return invalid("PNG IHDR compression, filter or interlace method unknown");
    bool palette = false;
    std::size_t i = 33;
    while (true) {
        if (i + 8 > d.size()) return invalid("PNG cut short before its image data");
        const std::uint32_t len = be32(d.data() + i);
        const unsigned char* type = d.data() + i + 4;
        if (len > 0x7FFFFFFFu) return invalid("PNG chunk length out of range");
        for (int k = 0; k < 4; ++k)
            if (!std::isalpha(type[k])) return invalid("PNG chunk type is not letters");
        if (png_chunk_is(type, "IDAT")) break;
        if (std::size_t(len) + 12 > d.size() - i)
            return invalid("PNG cut short before its image data");
        const bool critical = !(type[0] & 0x20);
        if (critical) {
            if (crc32(type, 4 + std::size_t(len)) != be32(type + 4 + len))
                return invalid("PNG critical chunk CRC mismatch");
            if (png_chunk_is(type, "PLTE")) {
                if (len == 0 || len % 3 != 0 || len > 768) {
                    if (colour == 3) return invalid("PNG palette of a bad length");
                } else {
                    palette = true;
                }
            } else if (png_chunk_is(type, "IEND")) {
                return invalid("PNG ends before any image data");
            } else if (png_chunk_is(type, "IHDR")) {
                return invalid("PNG with a second IHDR");
            } else {
                return invalid("PNG with an unknown critical chunk");
            }
        }
        i += 12 + std::size_t(len);
    }
    if (colour == 3 && !palette) return invalid("PNG palette image without PLTE");
    return valid(width, height);
}

// libjpeg's jpeg_read_header: SOI, then markers (bytes between segments are
// skipped with a warning, as libjpeg does) up to the first SOS: exactly one
// SOF of a process libjpeg-turbo decodes (baseline, extended, progressive,
// arithmetic; 8-bit), table segments of sane shape, and the checks of
// libjpeg's initial_setup (size 1..65500, 1..10 components, sampling 1..4).
ImageStructure jpeg_structure(std::span<const unsigned char> d) {
    if (d.size() < 2 || d[0] != 0xFF || d[1] != 0xD8)
        return invalid("JPEG does not start with SOI");
    std::size_t i = 2;
    bool have_sof = false;
    std::uint64_t width = 0, height = 0;
    unsigned components = 0;
    unsigned char ids[10]{};
    while (true) {
        // Next marker: skip anything up to an 0xFF, then fill bytes.
        while (i < d.size() && d[i] != 0xFF) ++i;
        while (i < d.size() && d[i] == 0xFF) ++i;
        if (i >= d.size()) return invalid("JPEG cut short before its first scan");
        const unsigned marker = d[i++];
        if (marker == 0x00) continue;  // a stuffed 0xFF00 is not a marker
        if (marker == 0xD8) return invalid("JPEG with a second SOI");
        if (marker == 0xD9) return invalid("JPEG ends before its first scan");
        if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // no length
        if (i + 2 > d.size()) return invalid("JPEG cut short before its first scan");
        const std::size_t len = be16(d.data() + i);
        if (len < 2) return invalid("JPEG segment length under 2");
        const unsigned char* p = d.data() + i + 2;  // segment payload
        const std::size_t n = len - 2;
        if (marker == 0xDA) {  // SOS: the header ends here
            // libjpeg checks the scan's length, component count and component
            // ids before it returns the header; the bytes after them (spectral
            // selection) only matter to the decoder, so a file cut there opens.
            const std::size_t have = d.size() - i - 2;
            if (!have_sof) return invalid("JPEG scan before any frame header");
            if (have < 1) return invalid("JPEG cut short before its first scan");
            const unsigned in_scan = p[0];
            if (in_scan < 1 || in_scan > 4 || n != 4 + 2 * std::size_t(in_scan))
                return invalid("JPEG scan header malformed");
            for (unsigned c = 0; c < in_scan; ++c) {
                if (have < 2 + 2 * std::size_t(c))
                    return invalid("JPEG cut short in its scan header");
                if (std::find(ids, ids + components, p[1 + 2 * c]) == ids + components)
                    return invalid("JPEG scan names a component the frame does not have");
            }
            return valid(width, height);
        }
        if (len > d.size() - i) return invalid("JPEG cut short before its first scan");
        switch (marker) {
            case 0xC0:
            case 0xC1:
            case 0xC2:
            case 0xC9:
            case 0xCA: {
                if (have_sof) return invalid("JPEG with a second frame header");
                if (n < 6) return invalid("JPEG frame header too short");
                if (p[0] != 8) return invalid("JPEG sample precision other than 8 bits");
                height = be16(p + 1);
                width = be16(p + 3);
                components = p[5];
                if (n != 6 + 3 * std::size_t(components))
                    return invalid("JPEG frame header length does not match its components");
                if (width == 0 || height == 0) return invalid("JPEG declares no pixels");
                if (width > 65500 || height > 65500)
                    return invalid("JPEG wider or taller than 65500");
                if (components == 0 || components > 10)
                    return invalid("JPEG component count out of range");
                for (unsigned c = 0; c < components; ++c) {
                    const unsigned h = p[7 + 3 * c] >> 4, v = p[7 + 3 * c] & 15;
                    if (h < 1 || h > 4 || v < 1 || v > 4)
                        return invalid("JPEG sampling factors out of range");
                    ids[c] = p[6 + 3 * c];
                }
                have_sof = true;
                break;
            }
            case 0xC3:
            case 0xC5:
            case 0xC6:
            case 0xC7:
            case 0xCB:
            case 0xCD:
            case 0xCE:
            case 0xCF:
                return invalid("JPEG process not supported (lossless or hierarchical)");
            case 0xC4: {  // DHT: class/index, 16 counts, that many symbols; repeated
                std::size_t k = 0;
                while (k < n) {
                    if (n - k < 17) return invalid("JPEG Huffman table segment malformed");
                    const unsigned index = p[k] & 0x0F, cls = p[k] >> 4;
                    std::size_t count = 0;
                    for (int b = 1; b <= 16; ++b) count += p[k + b];
                    if (cls > 1 || index > 3 || count > 256 || count > n - k - 17)
                        return invalid("JPEG Huffman table segment malformed");
                    k += 17 + count;
                }
                break;
            }
            case 0xDB: {  // DQT: precision/index, 64 values of 1 or 2 bytes; repeated
                std::size_t k = 0;
                while (k < n) {
                    const unsigned index = p[k] & 0x0F, precision = p[k] >> 4;
                    const std::size_t size = 1 + 64 * (precision ? 2 : 1);
                    if (index > 3 || precision > 1 || n - k < size)
                        return invalid("JPEG quantisation table segment malformed");
                    k += size;
                }
                break;
            }
            case 0xDD:
                if (n != 2) return invalid("JPEG restart interval segment malformed");
                break;
            case 0xCC:  // DAC
            case 0xDC:  // DNL
            case 0xFE:  // COM
                break;
            default:
                if (marker >= 0xE0 && marker <= 0xEF) break;  // APPn: EXIF, ICC, XMP...
                return invalid("JPEG with a marker libjpeg does not know");
        }
        i += len;
    }
}

// libnsgif's scan, as libvips 8.14 runs it: the header and logical screen
// (a screen of a size some tools write by mistake, or none, becomes 1x1 and
// the first frame decides), the global colour table, then frame after frame:
// extensions, image descriptor, local colour table, LZW code size and data
// sub-blocks. The first frame may grow the canvas. A frame counts once its
// data starts; whatever breaks after the first frame ends the scan there
// (libvips loads the frames before it); no frame at all is no image.
ImageStructure gif_structure(std::span<const unsigned char> d) {
    if (d.size() < 13 || std::memcmp(d.data(), "GIF", 3) != 0) return invalid("GIF header missing");
    std::uint64_t width = le16(d.data() + 6), height = le16(d.data() + 8);
    if ((width == 640 && (height == 480 || height == 512)) || (width == 800 && height == 600) ||
        (width == 1024 && height == 768) || (width == 1280 && height == 1024) ||
        (width == 1600 && height == 1200) || width == 0 || height == 0 || width > 2048 ||
        height > 2048)
        width = height = 1;
    std::size_t i = 13;
    if (d[10] & 0x80) {
        const std::size_t table = 3u << ((d[10] & 7) + 1);
        if (d.size() - i < table) return invalid("GIF cut short in its colour table");
        i += table;
    }
    std::uint32_t frames = 0;
    const char* problem = "GIF without a frame";
    while (true) {
        if (i < d.size() && d[i] == 0x3B) break;  // the trailer
        if (frames > 4096) break;
        // Extensions.
        bool cut = false;
        while (i < d.size() && d[i] == 0x21) {
            ++i;
            if (i >= d.size()) {
                cut = true;
                break;
            }
            const unsigned label = d[i];
            const std::size_t left = d.size() - i;
            if ((label == 0xF9 && left < 6) || (label == 0xFF && left < 17)) {
                cut = true;
                break;
            }
            if (label == 0xFE) {
                ++i;
            } else {
                if (left < 2) {
                    cut = true;
                    break;
                }
                i += 2 + std::size_t(d[i + 1]);
            }
            while (i < d.size() && d[i] != 0) {
                i += std::size_t(d[i]) + 1;
                if (i >= d.size()) cut = true;
            }
            if (cut) break;
            ++i;
        }
        if (cut || d.size() - std::min(i, d.size()) < 10) {
            problem = "GIF cut short before its first frame";
            break;
        }
        if (d[i] != 0x2C) {
            problem = "GIF with something other than a frame where one belongs";
            break;
        }
        const unsigned char* f = d.data() + i;
        if (frames == 0) {
            width = std::max<std::uint64_t>(width, le16(f + 1) + le16(f + 5));
            height = std::max<std::uint64_t>(height, le16(f + 3) + le16(f + 7));
        }
        const unsigned flags = f[9];
        i += 10;
        if (flags & 0x80) {
            const std::size_t table = 3u << ((flags & 7) + 1);
            if (d.size() - i < table) {
                problem = "GIF cut short in a colour table";
                break;
            }
            i += table;
        }
        // Image data: the LZW code size, then sub-blocks.
        const std::size_t left = d.size() - i;
        if (left == 0 || (left >= 1 && d[i] == 0x3B) || (left == 2 && d[i + 1] == 0x3B)) break;
        if (left < 3) {
            problem = "GIF cut short before a frame's data";
            break;
        }
        if (d[i] >= 12) {
            problem = "GIF LZW code size over 11";
            break;
        }
        ++frames;
        ++i;
        bool ran_off = false;
        while (true) {
            if (i >= d.size()) {
                ran_off = true;
                break;
            }
            const std::size_t block = std::size_t(d[i]) + 1;
            if (block > d.size() - i) {
                ran_off = true;
                break;
            }
            i += block;
            if (block == 1) break;
        }
        if (ran_off) break;
    }
    if (frames == 0) return invalid(problem);
    return valid(width, height, frames);
}

bool riff_tag_is(const unsigned char* p, const char* tag) {
    return std::memcmp(p, tag, 4) == 0;
}

// A VP8 (lossy) or VP8L (lossless) bitstream's own size, as libwebp's
// VP8GetInfo / VP8LGetInfo read it; nullopt when they would refuse it.
std::optional<DeclaredSize> webp_bitstream(const unsigned char* tag, const unsigned char* p,
                                           std::size_t n) {
    if (riff_tag_is(tag, "VP8 ")) {
        if (n < 10) return std::nullopt;
        const std::uint32_t bits = le24(p);
        const bool key_frame = !(bits & 1);
        if (!key_frame || ((bits >> 1) & 7) > 3 || !((bits >> 4) & 1) || (bits >> 5) >= n)
            return std::nullopt;
        if (p[3] != 0x9D || p[4] != 0x01 || p[5] != 0x2A) return std::nullopt;
        const std::uint32_t w = le16(p + 6) & 0x3FFF, h = le16(p + 8) & 0x3FFF;
        if (w == 0 || h == 0) return std::nullopt;
        return DeclaredSize{w, h};
    }
    if (riff_tag_is(tag, "VP8L")) {
        if (n < 5 || p[0] != 0x2F) return std::nullopt;
        const std::uint32_t bits = le32(p + 1);
        if ((bits >> 29) != 0) return std::nullopt;  // version
        return DeclaredSize{(bits & 0x3FFF) + 1u, ((bits >> 14) & 0x3FFF) + 1u};
    }
    return std::nullopt;
}

// libwebp's WebPDemux on a whole file (libvips hands it the whole file and
// refuses what the demuxer calls partial), then libvips's own size limit
// (16383 a side). The RIFF size within the file; every chunk, padded to even,
// inside the RIFF and followed by at least a chunk header or the RIFF's end.
// Then either one VP8/VP8L bitstream, or VP8X (known flags, canvas) with
// ALPH? + VP8/VP8L exactly the canvas's size, or ANIM then ANMF frames that
// each hold ALPH? + VP8/VP8L and fit in the canvas. Bitstream headers are read
// as VP8GetInfo / VP8LGetInfo do.
ImageStructure webp_structure(std::span<const unsigned char> d) {
    constexpr std::uint64_t kMaxPayload = 0xFFFFFFF6u;  // libwebp's MAX_CHUNK_PAYLOAD
    constexpr std::uint64_t kMaxSide = 16383;           // libvips's webpload
    if (d.size() < 12 || !riff_tag_is(d.data(), "RIFF") || !riff_tag_is(d.data() + 8, "WEBP"))
        return invalid("WebP RIFF header missing");
    const std::uint64_t riff = le32(d.data() + 4);
    if (riff < 8 || riff > kMaxPayload) return invalid("WebP RIFF size out of range");
    if (riff + 8 > d.size())
        return invalid("WebP cut short: the file is smaller than its RIFF size");
    const std::size_t end = std::size_t(riff) + 8;  // bytes after the RIFF are not the image's
    struct Chunk {
        const unsigned char* tag = nullptr;
        const unsigned char* data = nullptr;
        std::size_t size = 0;  // payload, unpadded
        std::size_t next = 0;  // offset after the padded payload
    };
    // The chunk at `at`, or false when its header or padded payload does
    // not fit in the RIFF.
    auto chunk_at = [&](std::size_t at, Chunk& c) {
        if (at > end || end - at < 8) return false;
        const std::uint64_t size = le32(d.data() + at + 4);
        const std::uint64_t padded = size + (size & 1);
        if (size > kMaxPayload || padded > end - at - 8) return false;
        c = Chunk{d.data() + at, d.data() + at + 8, std::size_t(size),
                  at + 8 + std::size_t(padded)};
        return true;
    };
    // After a chunk: the RIFF's end, or a whole chunk header with a size that fits.
    auto sound_after = [&](std::size_t at) {
        Chunk next;
        return at == end || chunk_at(at, next);
    };
    auto is_image = [](const Chunk& c) {
        return riff_tag_is(c.tag, "VP8 ") || riff_tag_is(c.tag, "VP8L");
    };
    // One frame's chunks from `at`: ALPH (not before VP8L), then the
    // bitstream. Its size, and in `at` the offset after it.
    auto frame_at = [&](std::size_t& at) -> std::optional<DeclaredSize> {
        Chunk c;
        if (!chunk_at(at, c)) return std::nullopt;
        bool alpha = false;
        if (riff_tag_is(c.tag, "ALPH")) {
            alpha = true;
            if (!sound_after(c.next) || !chunk_at(c.next, c)) return std::nullopt;
        }
        if (!is_image(c) || (alpha && riff_tag_is(c.tag, "VP8L"))) return std::nullopt;
        auto size = webp_bitstream(c.tag, c.data, c.size);
        if (!size || !sound_after(c.next)) return std::nullopt;
        at = c.next;
        return size;
    };

    Chunk first;
    if (!chunk_at(12, first)) return invalid("WebP chunk runs past the RIFF");
    if (!riff_tag_is(first.tag, "VP8X")) {
        if (!is_image(first)) return invalid("WebP does not start with VP8, VP8L or VP8X");
        std::size_t at = 12;
        auto size = frame_at(at);
        if (!size) return invalid("WebP bitstream header unreadable");
        if (size->width > kMaxSide || size->height > kMaxSide)
            return invalid("WebP wider or taller than 16383");
        return valid(size->width, size->height);
    }
    if (first.size < 10) return invalid("WebP VP8X chunk too short");
    const unsigned flags = first.data[0];
    if (flags & ~0x3Eu) return invalid("WebP VP8X flags unknown");
    const std::uint64_t canvas_w = std::uint64_t(le24(first.data + 4)) + 1;
    const std::uint64_t canvas_h = std::uint64_t(le24(first.data + 7)) + 1;
    if (canvas_w * canvas_h >= (std::uint64_t(1) << 32)) return invalid("WebP canvas too large");
    if (canvas_w > kMaxSide || canvas_h > kMaxSide)
        return invalid("WebP wider or taller than 16383");
    const bool animation = flags & 0x02;
    std::uint32_t frames = 0;
    bool still = false, anim_seen = false;
    std::size_t at = first.next;
    if (at == end) return invalid("WebP without an image");
    while (at != end) {
        Chunk c;
        if (!chunk_at(at, c)) return invalid("WebP chunk runs past the RIFF");
        if (riff_tag_is(c.tag, "VP8X")) return invalid("WebP with a second VP8X");
        if (is_image(c) || riff_tag_is(c.tag, "ALPH")) {
            if (animation || anim_seen) return invalid("WebP still image chunk in an animation");
            if (still) return invalid("WebP with two images");
            auto size = frame_at(at);
            if (!size) return invalid("WebP bitstream header unreadable");
            if (size->width != canvas_w || size->height != canvas_h)
                return invalid("WebP image size does not match its canvas");
            still = true;
            continue;
        }
        if (riff_tag_is(c.tag, "ANIM")) {
            if (c.size + (c.size & 1) < 6) return invalid("WebP ANIM chunk too short");
            anim_seen = true;
        } else if (riff_tag_is(c.tag, "ANMF")) {
            if (!anim_seen) return invalid("WebP frame before its ANIM chunk");
            if (c.size + (c.size & 1) < 16) return invalid("WebP ANMF chunk too short");
            const std::uint64_t x = std::uint64_t(le24(c.data)) * 2;
            const std::uint64_t y = std::uint64_t(le24(c.data + 3)) * 2;
            const std::uint64_t w = std::uint64_t(le24(c.data + 6)) + 1;
            const std::uint64_t h = std::uint64_t(le24(c.data + 9)) + 1;
            if (w * h >= (std::uint64_t(1) << 32)) return invalid("WebP frame too large");
            const std::size_t payload_end = c.next;
            std::size_t k = at + 8 + 16;
            auto size = frame_at(k);
            if (!size) return invalid("WebP frame without a readable image");
            if (k > payload_end) return invalid("WebP frame's image runs past its frame");
            // The bitstream's size is the frame's (libwebp takes it over the
            // ANMF's); it must fit in the canvas at the frame's offset.
            if (x + size->width > canvas_w || y + size->height > canvas_h)
                return invalid("WebP frame outside the canvas");
            if (animation) ++frames;
            at = k;  // the demuxer reads on from the frame's image
            continue;
        }
        at = c.next;
        if (!sound_after(at)) return invalid("WebP chunk runs past the RIFF");
    }
    if (animation) {
        if (frames == 0) return invalid("WebP animation without frames");
        return valid(canvas_w, canvas_h, frames);
    }
    if (!still) return invalid("WebP without an image");
    return valid(canvas_w, canvas_h);
}

// libvips reads BMP only through ImageMagick, which VIPS_BLOCK_UNTRUSTED
// blocks (rightly): the header is what there is to check.
ImageStructure bmp_structure(std::span<const unsigned char> d) {
    auto size = bmp(d);
    if (!size) return invalid("BMP header truncated");
    if (size->width == 0 || size->height == 0) return invalid("BMP declares no pixels");
    return valid(size->width, size->height);
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

std::optional<ImageStructure> check_image_structure(ImageFormat format,
                                                    std::span<const unsigned char> file) {
    switch (format) {
        case ImageFormat::png:
            return png_structure(file);
        case ImageFormat::jpeg:
            return jpeg_structure(file);
        case ImageFormat::gif:
            return gif_structure(file);
        case ImageFormat::webp:
            return webp_structure(file);
        case ImageFormat::bmp:
            return bmp_structure(file);
        default:
            return std::nullopt;
    }
}

}  // namespace litchi
