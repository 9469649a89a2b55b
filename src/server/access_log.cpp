// See access_log.hpp.
#include "server/access_log.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <cctype>

namespace litchi::server {
namespace {

// Query keys whose values are secrets in some client or other.
bool is_secret_key(std::string_view key) {
    static constexpr std::array<std::string_view, 8> kSecretWords = {
        "token", "key", "password", "passwd", "secret", "session", "auth", "sig"};
    std::string lower;
    lower.reserve(key.size());
    for (char c : key)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (auto word : kSecretWords) {
        if (lower.find(word) != std::string::npos) return true;
    }
    return false;
}

void append_printable(std::string& out, std::string_view text) {
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
    }
}

}  // namespace

std::string redact_target(std::string_view target) {
    std::string out;
    out.reserve(target.size());
    auto query_at = target.find('?');
    std::string_view path = target.substr(0, query_at);

    // The seed's WebSocket URL carries the token as the last path segment.
    constexpr std::string_view kTokenPath = "/api/litchi/";
    if (path.starts_with(kTokenPath) && path.size() > kTokenPath.size()) {
        out.append(kTokenPath);
        out.append("[redacted]");
    } else {
        append_printable(out, path);
    }
    if (query_at == std::string_view::npos) return out;

    out.push_back('?');
    std::string_view query = target.substr(query_at + 1);
    bool first = true;
    while (true) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        if (!first) out.push_back('&');
        first = false;
        auto eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        append_printable(out, key);
        if (eq != std::string_view::npos) {
            out.push_back('=');
            if (is_secret_key(key)) {
                out.append("[redacted]");
            } else {
                append_printable(out, pair.substr(eq + 1));
            }
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

void log_access(std::string_view client_ip, std::string_view method, std::string_view target,
                unsigned status, std::uint64_t bytes, std::chrono::steady_clock::duration elapsed) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    spdlog::info("{} {} {} {} {}B {:.1f}ms", client_ip, method, redact_target(target), status,
                 bytes, static_cast<double>(micros) / 1000.0);
}

}  // namespace litchi::server
