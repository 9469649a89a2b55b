// The transfer stage: per-easy-handle setup and the two libcurl callbacks
// that run on the network thread for every transfer. The SSRF guard judges
// each address as a socket is opened; the body writer counts, caps, sniffs,
// hashes and streams bytes to a .part file, so a body is never held in memory.
#include "fetch/transfer.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>

#include "core/address.hpp"
#include "core/version.hpp"
#include "fetch/part_pool.hpp"
#include "fetch/url_check.hpp"

namespace litchi {
namespace {

constexpr long kReceiveBuffer = 64 * 1024;

bool write_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        len -= std::size_t(n);
    }
    return true;
}

// The SSRF guard: judges the address about to be connected, for every
// connection curl opens for this transfer (first hop, redirect hops, each
// happy-eyeballs candidate). Checking here, not the URL's host, is what makes
// DNS rebinding and redirects to internal addresses fail.
curl_socket_t on_open_socket(void* transfer, curlsocktype purpose, struct curl_sockaddr* addr) {
    auto* t = static_cast<Transfer*>(transfer);
    if (purpose == CURLSOCKTYPE_IPCXN) {
        auto ip = sockaddr_to_ip(&addr->addr);
        if (!ip || !address_permitted(*ip, *t->limits)) {
            t->blocked_seen = true;
            t->detail = "connection to " +
                        (ip ? ip->to_string() + " (" + std::string(to_string(classify(*ip))) + ")"
                            : std::string("a non-IP address")) +
                        " refused";
            return CURL_SOCKET_BAD;
        }
    }
    return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

// Returning anything but `len` makes curl fail the transfer with
// CURLE_WRITE_ERROR; abort_reason says why.
std::size_t abort_body(Transfer& t, FailureReason reason, std::string detail) {
    t.abort_reason = reason;
    t.detail = std::move(detail);
    return 0;
}

// Less than --min-free left where the parts go? (A failing statvfs says no:
// the write itself then reports what is wrong.)
bool below_free_reserve(const std::filesystem::path& part, const FetchLimits& limits) {
    if (limits.min_free_bytes == 0) return false;
    struct statvfs fs {};
    if (::statvfs(part.c_str(), &fs) != 0) return false;
    return std::uint64_t(fs.f_bavail) * fs.f_frsize < limits.min_free_bytes;
}

// The same for a body's first bytes, answered from the last look at this
// folder when that is under 20 ms old (the network thread's own cache: a
// statfs per image was ~2 % of `litchi fetch`'s CPU). The reserve is then
// checked again every MiB of the body, uncached.
bool below_free_reserve_at_start(const std::filesystem::path& part, const FetchLimits& limits) {
    if (limits.min_free_bytes == 0) return false;
    struct Last {
        std::filesystem::path dir;
        std::uint64_t min_free = 0;
        std::chrono::steady_clock::time_point at{};
        bool below = false;
    };
    thread_local Last last;
    auto now = std::chrono::steady_clock::now();
    auto dir = part.parent_path();
    if (last.dir == dir && last.min_free == limits.min_free_bytes &&
        now - last.at < std::chrono::milliseconds(20))
        return last.below;
    last = {dir, limits.min_free_bytes, now, below_free_reserve(part, limits)};
    return last.below;
}

std::string disk_full_message(const FetchLimits& limits) {
    return "disk full: less than " + std::to_string(limits.min_free_bytes) +
           " bytes free (--min-free)";
}

// Body bytes: counted, size-capped, sniffed early, hashed, streamed to disk.
std::size_t on_body(char* data, std::size_t size, std::size_t n, void* transfer) {
    auto* t = static_cast<Transfer*>(transfer);
    const std::size_t len = size * n;
    const FetchLimits& limits = *t->limits;
    if (!t->status_checked) {
        t->status_checked = true;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        t->body_wanted = t->status >= 200 && t->status < 300;
        if (t->body_wanted) {
            curl_off_t declared = -1;
            curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
            if (declared > 0 && std::uint64_t(declared) > limits.max_bytes)
                return abort_body(
                    *t, FailureReason::too_large,
                    "Content-Length " + std::to_string(declared) + " is over the size limit");
            t->memory.attach(t->memory_held);
            if (declared > 0 && std::uint64_t(declared) <= kMemoryBody)
                t->memory.reserve(std::size_t(declared));
            t->fd = t->parts->take(t->part);
            if (t->fd < 0)
                return abort_body(*t, FailureReason::io,
                                  std::string("open: ") + std::strerror(errno));
            if (below_free_reserve_at_start(t->part, limits))
                return abort_body(*t, FailureReason::io, disk_full_message(limits));
        }
    }
    t->bytes_received->fetch_add(len, std::memory_order_relaxed);
    if (!t->body_wanted) {
        // An error page: read a little so the connection stays reusable.
        t->discarded += len;
        if (t->discarded > kMaxDiscardedBody)
            return abort_body(*t, FailureReason::http, "HTTP " + std::to_string(t->status));
        return len;
    }
    // curl 7.88's MAXFILESIZE trusts Content-Length only; this catches the rest.
    if (t->bytes + len > limits.max_bytes)
        return abort_body(*t, FailureReason::too_large, "body is over the size limit");
    if (t->head_len < kSniffBytes) {
        std::size_t take = std::min(kSniffBytes - t->head_len, len);
        std::memcpy(t->head + t->head_len, data, take);
        t->head_len += take;
        // Stop downloading HTML error pages and the like as soon as we know.
        if (t->head_len == kSniffBytes &&
            sniff_image(std::span(t->head, t->head_len)) == ImageFormat::unknown)
            return abort_body(*t, FailureReason::not_image,
                              "content is not a supported image format");
    }
    // The reserve again every MiB: other downloads fill the disk meanwhile.
    if ((t->bytes >> 20) != ((t->bytes + len) >> 20) && below_free_reserve(t->part, limits))
        return abort_body(*t, FailureReason::io, disk_full_message(limits));
    // A body in memory is hashed by the probe thread, with the rest of its
    // checks: SHA-256 was a tenth of `litchi fetch`'s CPU, all of it on this
    // thread, which every transfer waits for. A body in the file is hashed
    // here, as it comes.
    if (!t->in_memory || !t->memory.try_append(data, len)) {
        if (t->in_memory) {
            // Too large for memory: what came so far goes to the file first.
            auto held = t->memory.bytes();
            t->sha.update(held.data(), held.size());
            if (!write_memory_body(*t))
                return abort_body(*t, FailureReason::io,
                                  std::string("write: ") + std::strerror(errno));
            t->memory.release();
        }
        if (!write_all(t->fd, data, len))
            return abort_body(*t, FailureReason::io, std::string("write: ") + std::strerror(errno));
        t->sha.update(data, len);
    }
    t->bytes += len;
    return len;
}

}  // namespace

std::string host_key(const std::string& url) {
    auto p = url.find("://");
    if (p == std::string::npos) return url;
    auto end = url.find_first_of("/?#", p + 3);
    return url.substr(0, end);
}

void configure_easy(Transfer& t, const FetchLimits& limits) {
    CURL* e = t.easy;
    curl_easy_setopt(e, CURLOPT_URL, t.url.c_str());
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // every hop is checked here, not by curl
    // The job's User-Agent, or --user-agent; -H headers, then the job's; its
    // Referer. Set again on every attempt and hop (curl_easy_reset clears them).
    const RequestOptions* job = t.options.get();
    const std::string& agent =
        job && !job->user_agent.empty() ? job->user_agent : limits.user_agent;
    curl_easy_setopt(e, CURLOPT_USERAGENT, agent.c_str());
    if (!t.header_list && (!limits.headers.empty() || (job && !job->headers.empty()))) {
        curl_slist* list = nullptr;
        auto add = [&](const HeaderField& h) {
            // "Name;" is curl's way to send a header with an empty value.
            std::string line = h.value.empty() ? h.name + ";" : h.name + ": " + h.value;
            list = curl_slist_append(list, line.c_str());
        };
        for (const auto& h : limits.headers) add(h);
        if (job)
            for (const auto& h : job->headers) add(h);
        t.header_list.reset(list);
    }
    if (t.header_list) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list.get());
    if (job && !job->referer.empty()) curl_easy_setopt(e, CURLOPT_REFERER, job->referer.c_str());
    // Prefer multiplexing on an HTTP/2 connection, but only for https, where
    // ALPN settles it in the handshake. On plain http curl learns it only
    // from the first response, so every other transfer to the host would
    // wait behind that one (a slow host would take N x its latency).
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, t.url.starts_with("https:") ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(limits.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(limits.total_timeout.count()));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, limits.low_speed_bytes);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, long(limits.low_speed_time.count()));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limits.max_bytes));
    if (!limits.use_proxy_env) curl_easy_setopt(e, CURLOPT_PROXY, "");
    // No CURLOPT_ACCEPT_ENCODING: bodies are stored as sent, never inflated.
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    // Receive in 64 KiB reads: most images arrive with their headers in one
    // recv (libcurl's default 16 KiB took two or more for a typical 20 KiB
    // image; the curl tool reads 100 KiB). One buffer per easy handle.
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kReceiveBuffer);
}

bool MemoryBody::try_append(const char* data, std::size_t len) {
    if (bytes_.size() + len > kMemoryBody) return false;
    if (held_ && held_->fetch_add(len, std::memory_order_relaxed) + len > kMemoryBodies) {
        held_->fetch_sub(len, std::memory_order_relaxed);
        return false;
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(data);
    bytes_.insert(bytes_.end(), bytes, bytes + len);
    return true;
}

void MemoryBody::release() {
    if (held_ && !bytes_.empty()) held_->fetch_sub(bytes_.size(), std::memory_order_relaxed);
    std::vector<unsigned char>().swap(bytes_);
}

bool write_memory_body(Transfer& t) {
    t.in_memory = false;
    auto bytes = t.memory.bytes();
    return bytes.empty() ||
           write_all(t.fd, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void reset_attempt(Transfer& t) {
    close_part(t);
    t.memory.release();
    t.in_memory = true;
    t.sha.reset();
    t.bytes = 0;
    t.discarded = 0;
    t.head_len = 0;
    t.status = 0;
    t.status_checked = false;
    t.body_wanted = false;
    t.blocked_seen = false;
    t.abort_reason = FailureReason::none;
    t.detail.clear();
    t.retry_after.clear();
}

void close_part(Transfer& t) {
    if (t.fd >= 0) {
        ::close(t.fd);
        t.fd = -1;
    }
    if (!t.part.empty()) {
        std::error_code ec;
        std::filesystem::remove(t.part, ec);
        t.part.clear();
    }
}

}  // namespace litchi
