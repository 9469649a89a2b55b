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

// libvips loaded and set up once, on first use, from any thread
// (vips_library.hpp: VIPS_BLOCK_UNTRUSTED, the operation cache off, one worker
// thread per operation). Loading it and its libraries costs ~20 ms: `litchi
// fetch` of PNGs and JPEGs never pays it; `serve`, and `fetch --verify
// decode`, call this at start so a broken libvips shows at once. Throws
// std::runtime_error, saying why, when libvips cannot be loaded or started.
void ensure_image_library();
// The program name libvips is started with (argv[0]), and its environment;
// before any other thread starts (vips_library.hpp, prepare_vips).
void set_image_library_name(const char* argv0);

// Convenience for callers without a descriptor: opens `file` and probes it.
ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels, VerifyMode verify = VerifyMode::header);

}  // namespace litchi
