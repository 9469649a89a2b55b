// BlobStore: part names unique across nodes, the orphan sweep by age, and the
// group commit (sync data, rename into place, sync folders).
#include "blobs/blob_store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <system_error>

namespace litchi {
namespace {

constexpr std::size_t kMaxNodeTag = 32;

// Process-wide, so that two BlobStores in one process (same pid, same nonce,
// maybe the same tag) still never hand out the same name.
std::atomic<std::uint64_t> g_next_part{0};

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Random per process: a pid is reused across restarts and is the same number
// on different machines (containers all start at pid 1), so pid + counter
// alone would collide; 64 random bits make that practically impossible.
std::uint64_t process_nonce() {
    static const std::uint64_t nonce = [] {
        std::uint64_t value = 0;
        if (::getrandom(&value, sizeof value, 0) == ssize_t(sizeof value)) return value;
        // No entropy source (very old kernel, seccomp): still differs per
        // start and per process.
        auto t = std::chrono::system_clock::now().time_since_epoch().count();
        auto s = std::chrono::steady_clock::now().time_since_epoch().count();
        return splitmix64(std::uint64_t(t) ^ splitmix64(std::uint64_t(s)) ^
                          (std::uint64_t(::getpid()) << 32) ^
                          reinterpret_cast<std::uintptr_t>(&value));
    }();
    return nonce;
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
}

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

std::string BlobStore::sanitize_node_tag(std::string_view node) {
    std::string tag;
    for (char c : node.substr(0, kMaxNodeTag)) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        tag += ok ? c : '_';
    }
    return tag.empty() ? "node" : tag;
}

BlobStore::BlobStore(std::filesystem::path root, BlobLayout layout, BlobStoreOptions options)
    : root_(std::move(root)),
      tmp_(root_ / ".tmp"),
      layout_(layout),
      orphan_age_(options.orphan_age),
      node_tag_(sanitize_node_tag(options.node.empty() ? host_name() : options.node)),
      root_prefix_((root_ / "").native()) {
    char nonce[17];
    std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(process_nonce()));
    own_prefix_ = node_tag_ + "-" + std::to_string(::getpid()) + "-" + nonce + "-";
    if (orphan_age_ < std::chrono::seconds(1))
        throw std::invalid_argument("blob store: orphan age must be at least 1 second, not " +
                                    std::to_string(orphan_age_.count()));
    std::filesystem::create_directories(tmp_);
    // A crash mid-download leaves .part files behind; they are never valid.
    // But with a shared root, a young part may be another node's download in
    // progress: only old ones go.
    sweep_orphans(std::chrono::system_clock::now());
}

BlobStore::~BlobStore() {
    // Only succeeds when empty. A node creating a part at this moment either
    // gets in first (then rmdir fails) or finds no folder and recreates it
    // (create_part), so removing it is safe even with a shared root, and
    // `litchi fetch -o DIR` leaves no empty .tmp behind.
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
}

std::filesystem::path BlobStore::new_part_path() {
    auto n = g_next_part.fetch_add(1, std::memory_order_relaxed);
    return tmp_ / (own_prefix_ + std::to_string(n) + ".part");
}

int BlobStore::create_part(std::filesystem::path& path) {
    path = new_part_path();
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != ENOENT) return fd;
    // Another store on this root removed the empty .tmp just now.
    std::error_code ec;
    std::filesystem::create_directories(tmp_, ec);
    if (ec) {
        errno = ec.value();
        return -1;
    }
    return ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}

std::size_t BlobStore::sweep_orphans(std::chrono::system_clock::time_point now) {
    const std::string& own = own_prefix_;
    std::size_t removed = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(tmp_, ec)) {
        const auto& path = entry.path();
        if (path.extension() != ".part") continue;
        if (path.filename().string().starts_with(own)) continue;  // live: ours
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        auto mtime = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::seconds(st.st_mtim.tv_sec) +
                std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
        // A mtime in the future (clocks apart) counts as young.
        if (now - mtime < orphan_age_) continue;
        std::error_code remove_ec;
        // Two nodes may sweep at once: a name already gone is not an error.
        if (std::filesystem::remove(path, remove_ec)) ++removed;
    }
    return removed;
}

std::string BlobStore::relative_path(std::string_view sha256, ImageFormat format) const {
    std::string name = std::string(sha256) + "." + std::string(extension(format));
    if (layout_ == BlobLayout::sharded) return std::string(sha256.substr(0, 2)) + "/" + name;
    return name;
}

std::filesystem::path BlobStore::absolute_path(std::string_view sha256, ImageFormat format) const {
    return root_prefix_ + relative_path(sha256, format);
}

bool BlobStore::contains(std::string_view sha256, ImageFormat format) const {
    std::error_code ec;
    return std::filesystem::is_regular_file(absolute_path(sha256, format), ec);
}

std::vector<std::error_code> BlobStore::commit(const std::vector<PendingBlob>& batch) {
    std::set<std::string> touched;  // folders, each with its trailing separator
    std::vector<std::error_code> errors(batch.size());
    // 1. Data durable before any name points at it.
    if (batch.size() >= kSyncfsThreshold) {
        syncfs_at(root_);  // same filesystem as .tmp, and never removed under us
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
        const std::string target = root_prefix_ + relative_path(blob.sha256, blob.format);
        const std::string dir = target.substr(0, target.rfind('/') + 1);
        std::error_code ec;
        if (layout_ == BlobLayout::sharded && !std::filesystem::exists(dir)) {
            std::filesystem::create_directories(dir, ec);
            touched.insert(root_prefix_);  // the new shard folder's entry must be durable too
        }
        // One call where the filesystem can: a rename that refuses to
        // replace (EEXIST when the blob is there) instead of a stat, then a
        // rename. Where it cannot (NFS: EINVAL), the stat and the rename.
        bool there = false;
        if (!ec) {
            if (::renameat2(AT_FDCWD, blob.part.c_str(), AT_FDCWD, target.c_str(),
                            RENAME_NOREPLACE) == 0) {
                touched.insert(dir);
                continue;
            }
            if (errno == EEXIST)
                there = true;
            else if (errno == EINVAL || errno == ENOSYS)
                there = std::filesystem::exists(target, ec);
            else
                ec = std::error_code(errno, std::system_category());
        }
        if (!ec && there) {
            // Same name means same bytes: keep the one already there. Its
            // writer (maybe another node) synced its data before the rename,
            // but may not have synced the folder yet: sync it here too, so
            // what this call reports as stored is durable.
            std::filesystem::remove(blob.part, ec);
            touched.insert(dir);
            continue;
        }
        // Nothing here ever removes the final name: if another store renamed
        // the same blob in between, rename(2) atomically replaces one whole,
        // synced file with another holding the same bytes.
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
    // .part name that reappears after a crash is swept once it is old.
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
