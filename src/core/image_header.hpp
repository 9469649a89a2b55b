// What an image file says about itself, read straight from its bytes.
//
// Two readers:
// - read_declared_size: the pixel-bomb gate. A 100000×100000 PNG is refused
//   from its 33-byte header before any decoder, vips included, allocates
//   anything for it. It reads as little as it can and errs on the large side.
// - check_image_structure: the validation of a whole downloaded file for
//   PNG, JPEG, GIF, WebP and BMP, in place of a libvips header open (which
//   costs GLib objects, a source and a loader per image). It accepts what
//   libvips's own header read accepts and reports the same width, height and
//   page count; tests/unit/core_image_header_test.cpp holds it to that on a
//   corpus of real files. It does not decode pixels: `--verify decode` does.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "core/image_format.hpp"

namespace litchi {

struct DeclaredSize {
    std::uint64_t width = 0;
    std::uint64_t height = 0;
};

// For PNG, GIF (the logical screen, grown to every frame in `head` that
// reaches past it, as decoders grow their canvas), JPEG (first SOFn marker), WebP (VP8, VP8L,
// VP8X) and BMP. nullopt when the header is not there or not understood (the
// caller then relies on the decoder's own header read).
std::optional<DeclaredSize> read_declared_size(ImageFormat format,
                                               std::span<const unsigned char> head);

// How many leading bytes read_declared_size may need (JPEG markers can follow
// a large EXIF block).
inline constexpr std::size_t kDeclaredSizeBytes = 256 * 1024;

// The structural check's verdict on a whole file.
struct ImageStructure {
    bool valid = false;
    std::uint64_t width = 0, height = 0;  // as libvips reports them (a page's, for GIF/WebP)
    std::uint32_t pages = 0;              // frames of an animation, otherwise 1
    const char* problem = "";             // why not valid: a short static text
};

// For PNG (signature, IHDR with its CRC, chunks up to the first IDAT), JPEG
// (SOI, marker segments up to the first scan, one supported SOF), GIF (header,
// screen, every frame's descriptor and data sub-blocks), WebP (RIFF and chunk
// sizes, the VP8/VP8L/VP8X headers, every animation frame) and BMP (the
// header). nullopt for formats it does not check (TIFF, HEIF, AVIF), which
// keep libvips's header read. `file` is the whole file.
std::optional<ImageStructure> check_image_structure(ImageFormat format,
                                                    std::span<const unsigned char> file);

}  // namespace litchi
