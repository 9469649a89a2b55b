// See body_streams.hpp.
#include "server/body_streams.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/post.hpp>
#include <stdexcept>

#include "blobs/blob_store.hpp"
#include "fetch/manifest.hpp"

namespace litchi::server {

void BlockingBodyStream::pull(PieceHandler done) {
    boost::asio::post(pool_, [self = shared_from_this(), done = std::move(done)] {
        std::string piece;
        bool more = false;
        try {
            more = self->produce(piece);
        } catch (const std::exception& e) {
            spdlog::warn("streamed body failed: {}", e.what());
            done({}, false, true);
            return;
        }
        done(std::move(piece), more, false);
    });
}

ItemCursor::ItemCursor(JobStore& jobs, UserId user, JobId job, std::optional<ItemState> state,
                       int page_size)
    : jobs_(jobs), user_(user), job_(job) {
    query_.state = state;
    query_.after = 0;
    query_.limit = page_size;
}

const ItemRecord* ItemCursor::next() {
    if (index_ < page_.size()) return &page_[index_++];
    if (exhausted_) return nullptr;
    auto page = jobs_.list_items(user_, job_, query_);
    if (!page) throw std::runtime_error("job was deleted while its items were being read");
    page_ = std::move(page->items);
    index_ = 0;
    if (page->next) {
        query_.after = *page->next;
    } else {
        exhausted_ = true;
    }
    if (page_.empty()) return nullptr;
    return &page_[index_++];
}

std::string archive_entry_name(const ItemRecord& item) {
    return item.sha256 + "." + std::string(extension(item.format));
}

ManifestStream::ManifestStream(boost::asio::thread_pool& pool, JobStore& jobs, UserId user,
                               JobId job, std::size_t piece_bytes, int item_page)
    : BlockingBodyStream(pool, piece_bytes), cursor_(jobs, user, job, std::nullopt, item_page) {}

bool ManifestStream::produce(std::string& out) {
    while (out.size() < piece_bytes()) {
        const ItemRecord* item = cursor_.next();
        if (!item) return false;
        if (item->state == ItemState::queued || item->state == ItemState::active) continue;
        ManifestEntry entry;
        entry.url = item->url;
        entry.done = item->state == ItemState::done;
        entry.attempts = item->attempts;
        entry.http_status = item->http_status;
        if (entry.done) {
            entry.file = archive_entry_name(*item);
            entry.sha256 = item->sha256;
            entry.bytes = item->bytes;
            entry.width = item->width;
            entry.height = item->height;
            entry.format = item->format;
        } else {
            entry.reason =
                item->state == ItemState::cancelled && item->reason == FailureReason::none
                    ? FailureReason::cancelled
                    : item->reason;
        }
        out += to_manifest_line(entry);
        out += '\n';
    }
    return true;
}

// libarchive's write callback: everything it emits lands in output_, which
// the next pull hands to the socket.
struct ZipWriteCallback {
    static la_ssize_t write(struct archive*, void* client, const void* buffer, size_t length) {
        static_cast<ZipStream*>(client)->output_.append(static_cast<const char*>(buffer), length);
        return static_cast<la_ssize_t>(length);
    }
};

ZipStream::ZipStream(boost::asio::thread_pool& pool, JobStore& jobs, const BlobStore& blobs,
                     UserId user, JobId job, std::size_t piece_bytes, int item_page)
    : BlockingBodyStream(pool, piece_bytes),
      blobs_(blobs),
      cursor_(jobs, user, job, ItemState::done, item_page),
      slice_(piece_bytes) {}

ZipStream::~ZipStream() {
    if (archive_) archive_write_free(archive_);  // also closes it if a client left midway
}

void ZipStream::open_archive() {
    archive_ = archive_write_new();
    if (!archive_) throw std::runtime_error("archive_write_new failed");
    if (archive_write_set_format_zip(archive_) != ARCHIVE_OK ||
        archive_write_set_options(archive_, "zip:compression=store") != ARCHIVE_OK ||
        // No blocking: hand every write straight to our callback, no padding.
        archive_write_set_bytes_per_block(archive_, 0) != ARCHIVE_OK ||
        archive_write_open(archive_, this, nullptr, &ZipWriteCallback::write, nullptr) !=
            ARCHIVE_OK) {
        throw std::runtime_error(std::string("cannot start zip: ") +
                                 archive_error_string(archive_));
    }
}

bool ZipStream::start_next_entry() {
    while (const ItemRecord* item = cursor_.next()) {
        if (item->sha256.empty() || !seen_.insert(item->sha256).second)
            continue;  // same bytes: one entry
        auto path = blobs_.absolute_path(item->sha256, item->format);
        file_.reset(std::fopen(path.c_str(), "rb"));
        if (!file_) throw std::runtime_error("blob missing for a done item: " + item->sha256);
        struct stat info {};
        if (::fstat(::fileno(file_.get()), &info) != 0)
            throw std::runtime_error("cannot stat blob " + item->sha256);
        file_left_ = static_cast<std::uint64_t>(info.st_size);

        std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                       &archive_entry_free);
        archive_entry_set_pathname(entry.get(), archive_entry_name(*item).c_str());
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), 0644);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(file_left_));
        archive_entry_set_mtime(entry.get(), static_cast<time_t>(item->updated / 1000), 0);
        if (archive_write_header(archive_, entry.get()) != ARCHIVE_OK) {
            throw std::runtime_error(std::string("zip header: ") + archive_error_string(archive_));
        }
        return true;
    }
    return false;
}

void ZipStream::copy_slice() {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(file_left_, slice_.size()));
    auto got = std::fread(slice_.data(), 1, want, file_.get());
    if (got != want) throw std::runtime_error("blob shorter than its size while zipping");
    if (archive_write_data(archive_, slice_.data(), got) < 0) {
        throw std::runtime_error(std::string("zip data: ") + archive_error_string(archive_));
    }
    file_left_ -= got;
    if (file_left_ == 0) file_.reset();
}

bool ZipStream::produce(std::string& out) {
    if (!archive_) open_archive();
    while (output_.size() < piece_bytes() && !finished_) {
        if (file_) {
            copy_slice();
        } else if (!start_next_entry()) {
            // Writes the central directory through the callback.
            if (archive_write_close(archive_) != ARCHIVE_OK) {
                throw std::runtime_error(std::string("zip close: ") +
                                         archive_error_string(archive_));
            }
            finished_ = true;
        }
    }
    out.swap(output_);
    output_.clear();
    return !finished_;
}

}  // namespace litchi::server
