// Thumbnails of stored images, made with libvips' thumbnail (shrink-on-load,
// so a large JPEG is never decoded at full size) and cached on disk as
// DATA/thumbs/ab/<sha256>-<size>.webp. A thumbnail is written to a temporary
// name and renamed, so a concurrent reader sees a whole file or none; two
// requests racing for the same one both render it, which is harmless. The
// cache holds at most one file per blob and snapped size (kThumbnailSizes)
// and loses a blob's files with the blob, so it is bounded by the images
// stored. Rendering runs on the image pool (Placement::images).
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

// The only sizes rendered and cached: a request for N pixels gets the
// smallest of these that is at least N (the largest for anything above),
// so one image has at most four thumbnails, and a client cannot make the
// server decode a large picture again for every size from 16 to 1024.
inline constexpr int kThumbnailSizes[] = {64, 128, 256, 512};
int snap_thumbnail_size(int requested);

}  // namespace litchi::server
