// See user_secrets.hpp.
#include "store/user_secrets.hpp"

#include <sodium.h>

#include <array>
#include <stdexcept>

namespace litchi::user_secrets {
namespace {

constexpr std::size_t kTokenBytes = 32;

std::string hex(const unsigned char* bytes, std::size_t size) {
    std::string out(size * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes, size);
    out.pop_back();
    return out;
}

}  // namespace

UserError check_password(std::string_view password, const UserLimits& limits) {
    if (password.size() < limits.min_password_length ||
        password.size() > limits.max_password_length)
        return UserError::invalid_password;
    return UserError::none;
}

std::string hash_password(std::string_view password) {
    std::array<char, crypto_pwhash_STRBYTES> out{};
    if (crypto_pwhash_str(out.data(), password.data(), password.size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        throw std::runtime_error("argon2id: out of memory");
    return std::string(out.data());
}

bool password_matches(const std::string& stored_hash, std::string_view password) {
    const char* text = password.empty() ? "" : password.data();  // never a null pointer
    return crypto_pwhash_str_verify(stored_hash.c_str(), text, password.size()) == 0;
}

std::string dummy_password_hash() {
    std::array<unsigned char, 16> random{};
    randombytes_buf(random.data(), random.size());
    return hash_password(hex(random.data(), random.size()));
}

std::string new_token() {
    std::array<unsigned char, kTokenBytes> random{};
    randombytes_buf(random.data(), random.size());
    std::string encoded(
        sodium_base64_ENCODED_LEN(kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
    sodium_bin2base64(encoded.data(), encoded.size(), random.data(), random.size(),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    encoded.resize(std::char_traits<char>::length(encoded.c_str()));
    sodium_memzero(random.data(), random.size());
    return std::string(kTokenPrefix) + encoded;
}

IssuedToken issue_token(UserId user, TokenKind kind,
                        std::optional<std::chrono::milliseconds> lifetime, const UserLimits& limits,
                        TimeMs now) {
    IssuedToken issued;
    issued.token = new_token();
    issued.record.user = user;
    issued.record.kind = kind;
    issued.record.created = now;
    if (!lifetime && kind != TokenKind::api)
        lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(limits.session_lifetime);
    if (lifetime) issued.record.expires = issued.record.created + lifetime->count();
    return issued;
}

bool plausible_token(std::string_view token) {
    return token.size() >= kTokenPrefix.size() + 40 && token.size() <= 128 &&
           token.substr(0, kTokenPrefix.size()) == kTokenPrefix;
}

}  // namespace litchi::user_secrets
