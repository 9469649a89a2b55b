// See body_streams.hpp.
#include "server/body_streams.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
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

std::string url_file_stem(std::string_view url) {
    constexpr std::size_t kMaxStem = 100;
    std::string segment;
    if (auto parsed = boost::urls::parse_uri_reference(url)) {
        auto segments = parsed->segments();  // percent-decoded
        for (auto it = segments.begin(); it != segments.end(); ++it) segment = *it;
    }
    std::string stem;
    for (unsigned char c : segment) {
        bool keep = std::isalnum(c) || c == '.' || c == '-' || c == '_';
        stem += keep ? static_cast<char>(c) : '_';
    }
    if (auto dot = stem.rfind('.'); dot != std::string::npos) stem.resize(dot);
    while (!stem.empty() && (stem.front() == '.' || stem.front() == '_')) stem.erase(0, 1);
    if (stem.size() > kMaxStem) stem.resize(kMaxStem);
    while (!stem.empty() && (stem.back() == '.' || stem.back() == '_')) stem.pop_back();
    return stem.empty() ? "image" : stem;
}

const std::string& ArchiveNamer::name(const ItemRecord& item) {
    if (auto found = by_sha_.find(item.sha256); found != by_sha_.end()) return found->second;
    std::string chosen;
    if (style_ == ArchiveNames::sha256) {
        chosen = archive_entry_name(item);
    } else {
        const std::string ext = "." + std::string(extension(item.format));
        const std::string stem = url_file_stem(item.url);
        chosen = stem + ext;
        for (int n = 2; taken_.contains(chosen); ++n) chosen = stem + "-" + std::to_string(n) + ext;
    }
    taken_.insert(chosen);
    return by_sha_.emplace(item.sha256, std::move(chosen)).first->second;
}

const std::string* ArchiveNamer::find(const std::string& sha256) const {
    auto found = by_sha_.find(sha256);
    return found == by_sha_.end() ? nullptr : &found->second;
}

namespace {

// One manifest line for a finished item; "file" is `file` (done items).
std::string manifest_line(const ItemRecord& item, const std::string* file) {
    ManifestEntry entry;
    entry.url = item.url;
    entry.done = item.state == ItemState::done;
    entry.attempts = item.attempts;
    entry.http_status = item.http_status;
    if (entry.done) {
        entry.file = file ? *file : archive_entry_name(item);
        entry.sha256 = item.sha256;
        entry.bytes = item.bytes;
        entry.width = item.width;
        entry.height = item.height;
        entry.format = item.format;
    } else {
        entry.reason = item.state == ItemState::cancelled && item.reason == FailureReason::none
                           ? FailureReason::cancelled
                           : item.reason;
    }
    return to_manifest_line(entry);
}

}  // namespace

ManifestStream::ManifestStream(boost::asio::thread_pool& pool, JobStore& jobs, UserId user,
                               JobId job, std::size_t piece_bytes, int item_page)
    : BlockingBodyStream(pool, piece_bytes), cursor_(jobs, user, job, std::nullopt, item_page) {}

bool ManifestStream::produce(std::string& out) {
    while (out.size() < piece_bytes()) {
        const ItemRecord* item = cursor_.next();
        if (!item) return false;
        if (item->state == ItemState::queued || item->state == ItemState::active) continue;
        out += manifest_line(*item, nullptr);
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
                     UserId user, JobId job, std::size_t piece_bytes, int item_page,
                     ArchiveNames names)
    : BlockingBodyStream(pool, piece_bytes),
      jobs_(jobs),
      user_(user),
      job_(job),
      item_page_(item_page),
      blobs_(blobs),
      cursor_(jobs, user, job, ItemState::done, item_page),
      names_(names),
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

void ZipStream::write_header(const std::string& name, std::uint64_t size, TimeMs mtime) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                   &archive_entry_free);
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(entry.get(), static_cast<time_t>(mtime / 1000), 0);
    if (archive_write_header(archive_, entry.get()) != ARCHIVE_OK) {
        throw std::runtime_error(std::string("zip header: ") + archive_error_string(archive_));
    }
}

void ZipStream::start_manifest() {
    manifest_written_ = true;
    file_.reset(std::tmpfile());
    if (!file_) throw std::runtime_error("cannot create a temporary file for the zip's manifest");
    ItemCursor all(jobs_, user_, job_, std::nullopt, item_page_);
    std::uint64_t size = 0;
    TimeMs newest = 0;
    while (const ItemRecord* item = all.next()) {
        if (item->state == ItemState::queued || item->state == ItemState::active) continue;
        std::string line = manifest_line(*item, names_.find(item->sha256));
        line += '\n';
        if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size())
            throw std::runtime_error("cannot write the zip's manifest to a temporary file");
        size += line.size();
        newest = std::max(newest, item->updated);
    }
    if (std::fflush(file_.get()) != 0 || std::fseek(file_.get(), 0, SEEK_SET) != 0)
        throw std::runtime_error("cannot read back the zip's manifest");
    file_left_ = size;
    write_header("manifest.jsonl", size, newest);
    if (file_left_ == 0) file_.reset();
}

bool ZipStream::start_next_entry() {
    while (const ItemRecord* item = cursor_.next()) {
        if (item->sha256.empty() || names_.find(item->sha256)) continue;  // same bytes: one entry
        auto path = blobs_.absolute_path(item->sha256, item->format);
        file_.reset(std::fopen(path.c_str(), "rb"));
        if (!file_) throw std::runtime_error("blob missing for a done item: " + item->sha256);
        struct stat info {};
        if (::fstat(::fileno(file_.get()), &info) != 0)
            throw std::runtime_error("cannot stat blob " + item->sha256);
        file_left_ = static_cast<std::uint64_t>(info.st_size);
        write_header(names_.name(*item), file_left_, item->updated);
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
        } else if (start_next_entry()) {
            continue;
        } else if (!manifest_written_) {
            start_manifest();
        } else {
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
