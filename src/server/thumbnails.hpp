// Thumbnails of stored images, made with libvips' thumbnail (shrink-on-load,
// so a large JPEG is never decoded at full size) and cached on disk as
// DATA/thumbs/ab/<sha256>-<size>.webp. A thumbnail is written to a temporary
// name and renamed, so a concurrent reader sees a whole file or none; two
// requests racing for the same one both render it, which is harmless.
#pragma once

#include <filesystem>
#include <string_view>

namespace litchi::server {

class ThumbnailCache {
  public:
    explicit ThumbnailCache(std::filesystem::path root);

    // The cached thumbnail of `source` (whose content is named `sha256`),
    // at most `size` pixels on its longer side, made now if missing. Throws
    // std::runtime_error when libvips cannot read the source.
    std::filesystem::path get(std::string_view sha256, const std::filesystem::path& source,
                              int size);

    // Removes every cached size of a blob that was deleted.
    void remove(std::string_view sha256);

  private:
    std::filesystem::path folder_of(std::string_view sha256) const;

    std::filesystem::path root_;
};

inline constexpr std::string_view kThumbnailContentType = "image/webp";

}  // namespace litchi::server
