// See access_log.hpp.
#include "server/access_log.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <cctype>

#include "core/token_redaction.hpp"
#include "server/auth.hpp"

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

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// `text` with %XX escapes decoded and ASCII letters lower-cased: only for
// deciding what to redact, never printed as is.
std::string decoded_lower(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%' && i + 2 < text.size()) {
            int high = hex_value(text[i + 1]), low = hex_value(text[i + 2]);
            if (high >= 0 && low >= 0) {
                c = static_cast<char>(high * 16 + low);
                i += 2;
            }
        }
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
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
    // Judge the decoded, lower-cased path, so "/api/%6Citchi/T", "/API/litchi/T"
    // and an absolute-form "http://h/api/litchi/T" are redacted too.
    std::string folded = decoded_lower(path);
    auto marker = folded.find(kSeedWebSocketPrefix);
    if (marker != std::string::npos && folded.size() > marker + kSeedWebSocketPrefix.size()) {
        append_printable(out, std::string_view(folded).substr(0, marker));
        out.append(kSeedWebSocketPrefix);
        out.append("[redacted]");
    } else {
        append_printable(out, path);
    }
    if (query_at == std::string_view::npos) return redact_tokens(out);

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
    // Tokens where no route reads one ("/api//litchi/T", "?t=T", "/T").
    return redact_tokens(out);
}

void log_access(std::string_view client_ip, std::string_view method, std::string_view target,
                unsigned status, std::uint64_t bytes, std::chrono::steady_clock::duration elapsed) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    spdlog::info("{} {} {} {} {}B {:.1f}ms", client_ip, method, redact_target(target), status,
                 bytes, static_cast<double>(micros) / 1000.0);
}

}  // namespace litchi::server
