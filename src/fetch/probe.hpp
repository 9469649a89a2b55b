// Image checks off the network thread: magic bytes, the declared size (the
// pixel-bomb gate), then the file's structure. PNG, JPEG, GIF, WebP and BMP
// are checked by core/image_header, which reads what libvips's header read
// would and answers in microseconds; TIFF, HEIF and AVIF by a libvips
// header-only open (VIPS_BLOCK_UNTRUSTED, cache off). With VerifyMode::decode
// every pixel is then decoded by libvips as well.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "core/config.hpp"
#include "core/image_format.hpp"
#include "core/reason.hpp"

namespace litchi {

struct ProbeResult {
    FailureReason reason = FailureReason::none;  // none, not_image, too_many_pixels or io
    ImageFormat format = ImageFormat::unknown;
    int width = 0, height = 0, pages = 0;
    std::string detail;
};

// `fd` is an open descriptor of the whole downloaded file (read with pread or
// mapped; not closed). `head` is its first bytes (at least kSniffBytes when the
// file has them).
ProbeResult probe_image_fd(int fd, std::span<const unsigned char> head, std::uint64_t max_pixels,
                           VerifyMode verify = VerifyMode::header);

// The same for a body held whole in memory (`bytes`) and already written to
// `fd`: the structural check reads the memory, not the file; libvips (TIFF,
// HEIF, AVIF, VerifyMode::decode) still reads the file.
ProbeResult probe_image_bytes(int fd, std::span<const unsigned char> bytes,
                              std::uint64_t max_pixels, VerifyMode verify = VerifyMode::header);

// Convenience for callers without a descriptor: opens `file` and probes it.
ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels, VerifyMode verify = VerifyMode::header);

}  // namespace litchi
