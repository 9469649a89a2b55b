// Image formats Litchi accepts, and magic-byte sniffing: the cheap first check
// before any decoder sees a byte. SVG, HTML and anything else are not images.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace litchi {

enum class ImageFormat { unknown, jpeg, png, gif, webp, bmp, tiff, avif, heic };

// File extension without the dot: jpg png gif webp bmp tiff avif heic.
std::string_view extension(ImageFormat format);
std::string_view mime_type(ImageFormat format);
std::optional<ImageFormat> parse_extension(std::string_view ext);
// Format name as reported in manifests and the API: jpeg png gif webp bmp tiff avif heic.
std::string_view format_name(ImageFormat format);
std::optional<ImageFormat> parse_format_name(std::string_view name);

// How many leading bytes sniff_image needs to decide (fewer is fine, just less sure).
inline constexpr std::size_t kSniffBytes = 64;

// Looks only at the first bytes. Returns unknown for anything not on the list.
ImageFormat sniff_image(std::span<const unsigned char> head);

}  // namespace litchi
