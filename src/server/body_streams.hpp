// Chunked response bodies produced on the worker pool: the job manifest
// (JSON Lines, a page of items at a time) and the zip archive (libarchive's
// streaming writer fed one blob slice at a time). Each pull produces about
// one piece (--stream-piece, 64 KiB), so a 100,000-item job costs the server
// one page of items (--stream-page) and one piece of output per download in
// progress, never the whole body. Larger pieces mean fewer chunks and worker
// hops per download, smaller ones less memory per download and a socket that
// gets bytes sooner.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "server/http_types.hpp"
#include "store/job_store.hpp"

struct archive;

namespace litchi {
class BlobStore;
}

namespace litchi::server {

// Runs a synchronous produce() on the worker pool for each pull.
class BlockingBodyStream : public BodyStream,
                           public std::enable_shared_from_this<BlockingBodyStream> {
  public:
    // `piece_bytes`: about how much one pull produces.
    BlockingBodyStream(boost::asio::thread_pool& pool, std::size_t piece_bytes)
        : pool_(pool), piece_bytes_(piece_bytes) {}
    void pull(PieceHandler done) final;

  protected:
    std::size_t piece_bytes() const { return piece_bytes_; }

    // Appends the next piece to `out`; returns false once the body is complete.
    // Throws on failure (the client then sees a truncated body).
    virtual bool produce(std::string& out) = 0;

  private:
    boost::asio::thread_pool& pool_;
    std::size_t piece_bytes_;
};

// Items of one job, in input order, a page at a time: the state-filtered
// cursor of JobStore::list_items.
class ItemCursor {
  public:
    ItemCursor(JobStore& jobs, UserId user, JobId job, std::optional<ItemState> state,
               int page_size);
    // The next item, or nullptr at the end. Throws if the job disappeared.
    const ItemRecord* next();

  private:
    JobStore& jobs_;
    UserId user_;
    JobId job_;
    ItemQuery query_;
    std::vector<ItemRecord> page_;
    std::size_t index_ = 0;
    bool exhausted_ = false;
};

// The zip entry name of a done item: "<sha256>.<ext>" (the same name the
// manifest's "file" field gives).
std::string archive_entry_name(const ItemRecord& item);

// A file name stem from a URL's last path segment (percent-decoded, then
// anything but letters, digits, '.', '-' and '_' becomes '_', its extension
// dropped, at most 100 bytes); "image" when nothing is left. Never "",
// never starts with '.', never holds a '/'.
std::string url_file_stem(std::string_view url);

// How GET /api/jobs/{id}/archive.zip names its images (?names=).
enum class ArchiveNames { sha256, url };

// Names from URLs, unique within one archive: "cat.jpg", "cat-2.jpg", ...
class ArchiveNamer {
  public:
    explicit ArchiveNamer(ArchiveNames style) : style_(style) {}
    // The entry name of a done item; the same bytes always get the first name given.
    const std::string& name(const ItemRecord& item);
    // The name already given to these bytes, if any.
    const std::string* find(const std::string& sha256) const;

  private:
    ArchiveNames style_;
    std::unordered_map<std::string, std::string> by_sha_;
    std::unordered_set<std::string> taken_;
};

// GET /api/jobs/{id}/manifest.jsonl: one line per finished item (done, failed
// or cancelled, the last as failed with reason "cancelled"), in input order.
class ManifestStream final : public BlockingBodyStream {
  public:
    ManifestStream(boost::asio::thread_pool& pool, JobStore& jobs, UserId user, JobId job,
                   std::size_t piece_bytes, int item_page);

  private:
    bool produce(std::string& out) override;
    ItemCursor cursor_;
};

// GET /api/jobs/{id}/archive.zip: every done image of the job once (same
// bytes from two URLs are one entry), stored uncompressed (images are
// compressed already, and storing keeps the CPU cost at a copy), then
// manifest.jsonl (the job's manifest, its "file" fields naming the entries).
// The manifest is written to an unnamed temporary file first (a zip entry
// needs its size up front), so memory stays one page of items whatever the job.
class ZipStream final : public BlockingBodyStream {
  public:
    ZipStream(boost::asio::thread_pool& pool, JobStore& jobs, const BlobStore& blobs, UserId user,
              JobId job, std::size_t piece_bytes, int item_page,
              ArchiveNames names = ArchiveNames::sha256);
    ~ZipStream() override;

  private:
    bool produce(std::string& out) override;
    void open_archive();
    bool start_next_entry();  // false at the end of the items
    void start_manifest();    // the manifest into a temporary file, then its entry
    void copy_slice();        // one read of the current blob into the archive
    void write_header(const std::string& name, std::uint64_t size, TimeMs mtime);

    JobStore& jobs_;
    UserId user_;
    JobId job_;
    int item_page_;
    const BlobStore& blobs_;
    ItemCursor cursor_;
    struct archive* archive_ = nullptr;
    std::string output_;  // what libarchive wrote since the last pull
    ArchiveNamer names_;  // also: which bytes are in the archive already
    bool manifest_written_ = false;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr,
                                                          &std::fclose};  // the blob being copied
    std::uint64_t file_left_ = 0;
    std::vector<char> slice_;
    bool finished_ = false;

    friend struct ZipWriteCallback;
};

}  // namespace litchi::server
