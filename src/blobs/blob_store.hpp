// Content-addressed storage of image files: <root>/<sha256>.<ext> (flat, as
// `litchi fetch -o DIR` writes) or <root>/ab/<sha256>.<ext> (sharded, as the
// server keeps DIR/blobs). A blob is either whole under its name or absent:
// bytes go to a .part file in <root>/.tmp, are made durable, renamed, and the
// folder is synced; the engine does that for many files at once.
//
// Several processes (`litchi serve` nodes, possibly on different machines) may
// share one root on a shared filesystem: part names never collide across them
// and a node only ever sweeps parts old enough to be nobody's download.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
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

struct BlobStoreOptions {
    // Who writes the parts (a server node's name, e.g. "host:9527"). Only its
    // sanitized short form goes into part names, so people can tell whose
    // parts they see; uniqueness comes from the pid and a random per-process
    // nonce. Empty: this machine's host name.
    std::string node;
    // A .part file whose mtime is at least this old is an orphan (its writer
    // crashed) and any node may remove it. Live parts are written (or replaced,
    // see the engine's part pool) far more often; the server passes its lease
    // time. Must be at least one second.
    std::chrono::seconds orphan_age{60};
};

class BlobStore {
  public:
    // Creates root and root/.tmp if missing and sweeps orphaned parts
    // (sweep_orphans(now)). Throws std::invalid_argument on an orphan_age
    // under one second.
    BlobStore(std::filesystem::path root, BlobLayout layout, BlobStoreOptions options = {});
    // Removes the .tmp folder when it is empty (rmdir fails harmlessly when
    // another node's parts are in it; a node that creates a part just after
    // the folder went away recreates it: create_part()).
    ~BlobStore();
    BlobStore(const BlobStore&) = delete;
    BlobStore& operator=(const BlobStore&) = delete;

    const std::filesystem::path& root() const { return root_; }

    // A new unique path for a download in progress, on the same filesystem as
    // root: <root>/.tmp/<node tag>-<pid>-<nonce>-<counter>.part.
    std::filesystem::path new_part_path();

    // Creates a new part file (O_EXCL, read-write) and returns its descriptor
    // (-1 with errno set on failure) and, through `path`, its name. Recreates
    // .tmp when it is missing (another BlobStore on this root removed it
    // because it was empty a moment ago).
    int create_part(std::filesystem::path& path);

    // Removes every .part file in .tmp whose mtime is at least orphan_age
    // before `now`, whichever node or earlier run wrote it; never this
    // process's own parts (they are live: their owner removes them) and never
    // a younger part. Returns how many it removed. Safe to run on several
    // nodes at once.
    std::size_t sweep_orphans(std::chrono::system_clock::time_point now);

    std::chrono::seconds orphan_age() const { return orphan_age_; }
    // The sanitized node tag part names start with.
    const std::string& node_tag() const { return node_tag_; }

    // [A-Za-z0-9._-] only (anything else becomes '_'), at most 32 bytes:
    // "host:9527" -> "host_9527". Empty in, "node" out.
    static std::string sanitize_node_tag(std::string_view node);

    // Relative path of a blob: "<sha>.<ext>" or "ab/<sha>.<ext>".
    std::string relative_path(std::string_view sha256, ImageFormat format) const;
    std::filesystem::path absolute_path(std::string_view sha256, ImageFormat format) const;
    bool contains(std::string_view sha256, ImageFormat format) const;

    // Group commit: makes every part's data durable (one syncfs for a large
    // batch, an fsync per file for a small one), renames each part to its
    // final name (dropping it if that name exists: same bytes, stored once),
    // then fsyncs every folder touched, once each (a folder whose name was
    // already there too: it may be another node's rename not yet synced). Returns one error code
    // per blob (empty: stored). A failed sync throws std::system_error: then nothing in the batch
    // may be called durable.
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
    std::chrono::seconds orphan_age_;
    std::string node_tag_;
    // "<node tag>-<pid>-<nonce>-": the start of every part name this process
    // makes through this store. The counter that follows is process-wide, so
    // two stores in one process with the same tag never collide either.
    std::string own_prefix_;
    // root_ with a trailing separator: a blob's name is this + relative_path,
    // formed without std::filesystem's parsing (commit does it per image).
    std::string root_prefix_;
};

}  // namespace litchi
