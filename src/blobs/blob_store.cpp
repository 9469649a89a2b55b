#include "blobs/blob_store.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <system_error>

namespace litchi {
namespace {

void fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + dir.string());
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) throw std::system_error(err, std::generic_category(), "fsync " + dir.string());
}

std::error_code fsync_file(const std::filesystem::path& file) {
    // fsync through a read-only descriptor flushes the file's data on Linux.
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {errno, std::generic_category()};
    int rc = ::fdatasync(fd);
    int err = errno;
    ::close(fd);
    return rc == 0 ? std::error_code{} : std::error_code{err, std::generic_category()};
}

void syncfs_at(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + dir.string());
    int rc = ::syncfs(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) throw std::system_error(err, std::generic_category(), "syncfs " + dir.string());
}

}  // namespace

BlobStore::BlobStore(std::filesystem::path root, BlobLayout layout)
    : root_(std::move(root)), tmp_(root_ / ".tmp"), layout_(layout) {
    std::filesystem::create_directories(tmp_);
    // A crash mid-download leaves .part files behind; they are never valid.
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(tmp_, ec))
        if (entry.path().extension() == ".part") std::filesystem::remove(entry.path(), ec);
}

BlobStore::~BlobStore() {
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);  // only succeeds when empty, which is the point
}

std::filesystem::path BlobStore::new_part_path() {
    std::lock_guard lock(mutex_);
    return tmp_ / (std::to_string(::getpid()) + "-" + std::to_string(next_part_++) + ".part");
}

std::string BlobStore::relative_path(std::string_view sha256, ImageFormat format) const {
    std::string name = std::string(sha256) + "." + std::string(extension(format));
    if (layout_ == BlobLayout::sharded) return std::string(sha256.substr(0, 2)) + "/" + name;
    return name;
}

std::filesystem::path BlobStore::absolute_path(std::string_view sha256, ImageFormat format) const {
    return root_ / relative_path(sha256, format);
}

bool BlobStore::contains(std::string_view sha256, ImageFormat format) const {
    std::error_code ec;
    return std::filesystem::is_regular_file(absolute_path(sha256, format), ec);
}

std::vector<std::error_code> BlobStore::commit(const std::vector<PendingBlob>& batch) {
    std::set<std::filesystem::path> touched;
    std::vector<std::error_code> errors(batch.size());
    // 1. Data durable before any name points at it.
    if (batch.size() >= kSyncfsThreshold) {
        syncfs_at(tmp_);
    } else {
        for (std::size_t i = 0; i < batch.size(); ++i) errors[i] = fsync_file(batch[i].part);
    }
    // 2. Rename into place.
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& blob = batch[i];
        if (errors[i]) {
            std::error_code ignored;
            std::filesystem::remove(blob.part, ignored);
            continue;
        }
        auto target = absolute_path(blob.sha256, blob.format);
        auto dir = target.parent_path();
        std::error_code ec;
        if (layout_ == BlobLayout::sharded && !std::filesystem::exists(dir)) {
            std::filesystem::create_directories(dir, ec);
            touched.insert(root_);  // the new shard folder's entry must be durable too
        }
        if (!ec && std::filesystem::exists(target, ec)) {
            // Same name means same bytes: keep the one that is already durable.
            std::filesystem::remove(blob.part, ec);
            continue;
        }
        if (!ec) std::filesystem::rename(blob.part, target, ec);
        if (ec) {
            std::error_code ignored;
            std::filesystem::remove(blob.part, ignored);
            errors[i] = ec;
            continue;
        }
        touched.insert(dir);
    }
    // 3. The new names durable: each folder once, or, when a batch spread
    // over many shard folders, one syncfs for all of them (a fsync per shard
    // folder would cost about one fsync per image). .tmp is not synced: a
    // .part name that reappears after a crash is removed at the next open.
    if (touched.size() >= kSyncfsThreshold) {
        syncfs_at(root_);
    } else {
        for (const auto& dir : touched) fsync_dir(dir);
    }
    return errors;
}

void BlobStore::remove(std::string_view sha256, ImageFormat format) {
    std::error_code ec;
    std::filesystem::remove(absolute_path(sha256, format), ec);
}

}  // namespace litchi
