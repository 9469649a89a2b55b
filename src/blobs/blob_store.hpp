// Content-addressed storage of image files: <root>/<sha256>.<ext> (flat, as
// `litchi fetch -o DIR` writes) or <root>/ab/<sha256>.<ext> (sharded, as the
// server keeps DIR/blobs). A blob is either whole under its name or absent:
// bytes go to a .part file in <root>/.tmp, are made durable, renamed, and the
// folder is synced; the engine does that for many files at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/image_format.hpp"

namespace litchi {

enum class BlobLayout { flat, sharded };

// A downloaded, checked file under its .part name (written, closed, not yet synced).
struct PendingBlob {
    std::filesystem::path part;
    std::string sha256;
    ImageFormat format = ImageFormat::unknown;
};

class BlobStore {
  public:
    // Creates root and root/.tmp if missing and removes .part files a crash left behind.
    BlobStore(std::filesystem::path root, BlobLayout layout);
    ~BlobStore();  // removes the .tmp folder when it is empty
    BlobStore(const BlobStore&) = delete;
    BlobStore& operator=(const BlobStore&) = delete;

    const std::filesystem::path& root() const { return root_; }

    // A new unique path for a download in progress, on the same filesystem as root.
    std::filesystem::path new_part_path();

    // Relative path of a blob: "<sha>.<ext>" or "ab/<sha>.<ext>".
    std::string relative_path(std::string_view sha256, ImageFormat format) const;
    std::filesystem::path absolute_path(std::string_view sha256, ImageFormat format) const;
    bool contains(std::string_view sha256, ImageFormat format) const;

    // Group commit: makes every part's data durable (one syncfs for a large
    // batch, an fsync per file for a small one), renames each part to its
    // final name (dropping it if that name exists: same bytes, stored once),
    // then fsyncs every folder touched, once each. Returns one error code per
    // blob (empty: stored). A failed sync throws std::system_error: then
    // nothing in the batch may be called durable.
    std::vector<std::error_code> commit(const std::vector<PendingBlob>& batch);

    // Batches at least this large are made durable with one syncfs(2) instead
    // of an fsync per file (measured on this kind of disk: ~900 fsyncs/s, one
    // syncfs covers thousands of files).
    static constexpr std::size_t kSyncfsThreshold = 4;

    // Removes one blob (the server does this when no job uses it any more).
    void remove(std::string_view sha256, ImageFormat format);

  private:
    std::filesystem::path root_;
    std::filesystem::path tmp_;
    BlobLayout layout_;
    std::mutex mutex_;
    std::uint64_t next_part_ = 0;
};

}  // namespace litchi
