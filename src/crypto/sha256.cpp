// See sha256.hpp.
#include "crypto/sha256.hpp"

#include <openssl/evp.h>

#include <new>
#include <stdexcept>
#include <utility>

namespace litchi {
namespace {

// Looked up once. Given the legacy EVP_sha256(), every EVP_DigestInit_ex
// makes OpenSSL 3 fetch the implementation from its provider again (a
// property query under a lock): a tenth of the engine's time while it queued
// a long list, when every queued transfer started a hasher.
const EVP_MD* sha256_md() {
    static const EVP_MD* const md = [] {
        EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        if (!fetched) throw std::runtime_error("SHA-256 unavailable");
        return fetched;
    }();
    return md;
}

void start(EVP_MD_CTX* md) {
    if (EVP_DigestInit_ex(md, sha256_md(), nullptr) != 1)
        throw std::runtime_error("SHA-256 unavailable");
}

}  // namespace

struct Sha256::Context {
    Context() : md(EVP_MD_CTX_new()) {
        if (!md) throw std::bad_alloc();
    }
    ~Context() { EVP_MD_CTX_free(md); }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    EVP_MD_CTX* md;
};

Sha256::Sha256() noexcept = default;

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

Sha256::Context& Sha256::context() {
    if (!ctx_) {
        auto made = std::make_unique<Context>();
        start(made->md);
        ctx_ = std::move(made);
    }
    return *ctx_;
}

void Sha256::reset() {
    if (ctx_) start(ctx_->md);
}

void Sha256::update(const void* data, std::size_t len) {
    EVP_DigestUpdate(context().md, data, len);
}

std::string Sha256::finish_hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(context().md, digest, &n);
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
