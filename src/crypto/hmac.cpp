// See hmac.hpp.
#include "crypto/hmac.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace litchi {

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    // An empty key is a valid HMAC key; OpenSSL wants a non-null pointer for it.
    static const unsigned char kNoKey = 0;
    const void* key_bytes = key.empty() ? static_cast<const void*>(&kNoKey) : key.data();
    if (!HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &n))
        throw std::runtime_error("HMAC-SHA256 unavailable");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(std::size_t(n) * 2, '0');
    for (unsigned i = 0; i < n; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0xF];
    }
    return out;
}

}  // namespace litchi
