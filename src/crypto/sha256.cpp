// See sha256.hpp.
#include "crypto/sha256.hpp"

#include <openssl/evp.h>

#include <new>
#include <stdexcept>

namespace litchi {

struct Sha256::Context {
    Context() : md(EVP_MD_CTX_new()) {
        if (!md) throw std::bad_alloc();
    }
    ~Context() { EVP_MD_CTX_free(md); }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    EVP_MD_CTX* md;
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
    reset();
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::reset() {
    if (EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 unavailable");
}

void Sha256::update(const void* data, std::size_t len) {
    EVP_DigestUpdate(ctx_->md, data, len);
}

std::string Sha256::finish_hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_->md, digest, &n);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(std::size_t(n) * 2, '0');
    for (unsigned i = 0; i < n; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0xF];
    }
    return out;
}

std::string sha256_hex(std::string_view bytes) {
    Sha256 hasher;
    hasher.update(bytes);
    return hasher.finish_hex();
}

}  // namespace litchi
