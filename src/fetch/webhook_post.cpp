// See webhook_post.hpp.
#include "fetch/webhook_post.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "fetch/url_check.hpp"

namespace litchi {
namespace {

struct Guard {
    const FetchLimits* limits = nullptr;
    bool blocked = false;
    std::string detail;
};

// The engine's connect-time rule: every address curl is about to connect to.
curl_socket_t on_open_socket(void* data, curlsocktype purpose, struct curl_sockaddr* addr) {
    auto* guard = static_cast<Guard*>(data);
    if (purpose == CURLSOCKTYPE_IPCXN) {
        auto ip = sockaddr_to_ip(&addr->addr);
        if (!ip || !address_permitted(*ip, *guard->limits)) {
            guard->blocked = true;
            guard->detail = "connection to " +
                            (ip ? ip->to_string() : std::string("a non-IP address")) +
                            " refused by the address guard";
            return CURL_SOCKET_BAD;
        }
    }
    return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
    return size * n;  // the answer's body is not read
}

FailureReason reason_of(CURLcode rc) {
    switch (rc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return FailureReason::dns;
        case CURLE_OPERATION_TIMEDOUT:
            return FailureReason::timeout;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
            return FailureReason::tls;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            return FailureReason::bad_url;
        default:
            return FailureReason::connect;
    }
}

}  // namespace

PostResult post_json(std::string_view url, std::string_view body,
                     const std::vector<std::string>& headers, const FetchLimits& limits,
                     std::chrono::milliseconds timeout) {
    PostResult out;
    auto checked = check_url(url, limits);
    if (!checked.ok) {
        out.reason = checked.reason;
        out.detail = checked.detail;
        return out;
    }
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
    if (!easy) {
        out.reason = FailureReason::io;
        out.detail = "curl_easy_init failed";
        return out;
    }
    struct SlistFree {
        void operator()(curl_slist* list) const { curl_slist_free_all(list); }
    };
    std::unique_ptr<curl_slist, SlistFree> list;
    auto append = [&](const std::string& line) {
        list.reset(curl_slist_append(list.release(), line.c_str()));
    };
    append("Content-Type: application/json");
    append("Expect:");  // no 100-continue round trip for a small body
    for (const auto& line : headers) append(line);
    Guard guard;
    guard.limits = &limits;
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* e = easy.get();
    curl_easy_setopt(e, CURLOPT_URL, checked.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, limits.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list.get());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(limits.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(timeout.count()));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    if (!limits.use_proxy_env) curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &guard);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    out.http_status = static_cast<int>(status);
    if (guard.blocked) {
        out.reason = FailureReason::blocked_address;
        out.detail = guard.detail;
    } else if (rc != CURLE_OK) {
        out.reason = reason_of(rc);
        out.detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    } else if (status / 100 != 2) {
        out.reason = FailureReason::none;
        out.detail = "answered HTTP " + std::to_string(status);
    }
    return out;
}

}  // namespace litchi
