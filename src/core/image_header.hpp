// Declared image dimensions, read straight from the first bytes of a file.
// This is the pixel-bomb gate: a 100000×100000 PNG is refused from its 33-byte
// header before any decoder, vips included, allocates anything for it.
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

}  // namespace litchi
