// Image checks off the network thread: magic bytes, then a libvips
// header-only open (VIPS_BLOCK_UNTRUSTED, cache off) for width, height and
// pages, refusing pixel bombs from the header alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "core/image_format.hpp"
#include "core/reason.hpp"

namespace litchi {

struct ProbeResult {
    FailureReason reason = FailureReason::none;  // none, not_image or too_many_pixels
    ImageFormat format = ImageFormat::unknown;
    int width = 0, height = 0, pages = 0;
    std::string detail;
};

// `fd` is an open descriptor of the file (read from with pread; not closed).
ProbeResult probe_image_fd(int fd, std::span<const unsigned char> head, std::uint64_t max_pixels);

// Convenience for callers without a descriptor: opens `file` and probes it.
ProbeResult probe_image_file(const std::filesystem::path& file, std::span<const unsigned char> head,
                             std::uint64_t max_pixels);

}  // namespace litchi
