// See thumbnails.hpp.
#include "server/thumbnails.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <iterator>
#include <stdexcept>
#include <system_error>

#include "fetch/vips_library.hpp"

namespace litchi::server {

ThumbnailCache::ThumbnailCache(std::filesystem::path root) : root_(std::move(root)) {
    std::filesystem::create_directories(root_);
}

std::filesystem::path ThumbnailCache::folder_of(std::string_view sha256) const {
    return root_ / std::string(sha256.substr(0, 2));
}

std::filesystem::path ThumbnailCache::get(std::string_view sha256,
                                          const std::filesystem::path& source, int size) {
    auto folder = folder_of(sha256);
    auto target = folder / fmt::format("{}-{}.webp", sha256, size);
    std::error_code ec;
    if (std::filesystem::is_regular_file(target, ec) && std::filesystem::file_size(target, ec) > 0)
        return target;

    std::filesystem::create_directories(folder);
    auto part = folder / fmt::format(".{}-{}.{:08x}.part", sha256, size, randombytes_random());
    const VipsLibrary& vips = vips_library();
    // size=down: a small image is not blown up; the first page of an animation.
    VipsImage* thumb = nullptr;
    if (vips.thumbnail(source.c_str(), &thumb, size, "size", VIPS_SIZE_DOWN, nullptr) != 0 ||
        vips.webpsave(thumb, part.c_str(), "Q", 80, "strip", TRUE, nullptr) != 0) {
        std::string why = vips.error_buffer();
        vips.error_clear();
        while (!why.empty() && why.back() == '\n') why.pop_back();
        if (thumb) vips.object_unref(thumb);
        std::filesystem::remove(part, ec);
        throw std::runtime_error(fmt::format("thumbnail of {} failed: {}", sha256, why));
    }
    vips.object_unref(thumb);
    std::filesystem::rename(part, target);
    return target;
}

int snap_thumbnail_size(int requested) {
    for (int size : kThumbnailSizes)
        if (requested <= size) return size;
    return std::end(kThumbnailSizes)[-1];
}

void ThumbnailCache::remove(std::string_view sha256) {
    std::error_code ec;
    auto folder = folder_of(sha256);
    std::string prefix = std::string(sha256) + "-";
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
        if (entry.path().filename().string().starts_with(prefix))
            std::filesystem::remove(entry.path(), ec);
    }
}

}  // namespace litchi::server
