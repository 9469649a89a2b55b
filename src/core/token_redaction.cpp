// See token_redaction.hpp.
#include "core/token_redaction.hpp"

namespace litchi {
namespace {

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_token_char(char c) {
    return is_alnum(c) || c == '_' || c == '-';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The character at `text[i]`, %XX decoded; `width` is how many bytes it took.
char char_at(std::string_view text, std::size_t i, std::size_t& width) {
    if (text[i] == '%' && i + 2 < text.size()) {
        int high = hex_value(text[i + 1]), low = hex_value(text[i + 2]);
        if (high >= 0 && low >= 0) {
            width = 3;
            return static_cast<char>(high * 16 + low);
        }
    }
    width = 1;
    return text[i];
}

// The length in bytes of the token-shaped run starting at `start`, or 0.
std::size_t token_run(std::string_view text, std::size_t start) {
    static constexpr std::string_view kPrefix = "lt_";
    std::size_t i = start;
    for (char expected : kPrefix) {
        if (i >= text.size()) return 0;
        std::size_t width = 0;
        if (char_at(text, i, width) != expected) return 0;
        i += width;
    }
    std::size_t tail = 0;
    while (i < text.size()) {
        std::size_t width = 0;
        if (!is_token_char(char_at(text, i, width))) break;
        i += width;
        ++tail;
    }
    return tail >= kMinTokenTail ? i - start : 0;
}

// A run may start at `i`: the text before it does not end in a letter or digit.
bool at_boundary(std::string_view text, std::size_t i) {
    return i == 0 || !is_alnum(text[i - 1]);
}

bool may_start(char c) {
    return c == 'l' || c == '%';
}

}  // namespace

bool contains_token_shape(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (may_start(text[i]) && at_boundary(text, i) && token_run(text, i) != 0) return true;
    }
    return false;
}

std::string redact_tokens(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t run = may_start(text[i]) && at_boundary(text, i) ? token_run(text, i) : 0;
        if (run != 0) {
            out.append("lt_[redacted]");
            i += run;
        } else {
            out.push_back(text[i]);
            ++i;
        }
    }
    return out;
}

}  // namespace litchi
