// SHA-256, the one hasher of the project. Downloaded bodies are hashed as
// they stream in (every downloaded byte goes through here); short strings in
// one call with sha256_hex().
//
// Why OpenSSL's libcrypto: libcurl loads it anyway, and its SHA-256 uses the
// CPU's SHA extensions where present, measured at ~15x fewer instructions per
// byte than a portable implementation. The price is a second crypto library
// beside libsodium (which the user store keeps for argon2id and random
// tokens); the store hashes tokens here too, so SHA-256 has one source.
//
// This header includes no OpenSSL header: the hashing context sits behind a
// pointer to an incomplete type. It is made on the first update() (or
// finish_hex()), not by the constructor: the engine makes a transfer, with
// its hasher, for every request it queues, long before its first byte (and
// a request that fails before any body never needs one); reset() keeps a
// context for reuse.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace litchi {

class Sha256 {
  public:
    Sha256() noexcept;
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    // Starts a new digest (a new hasher is already reset; it holds no context yet).
    void reset();
    void update(const void* data, std::size_t len);
    void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
    // Lowercase hex digest (64 characters); the object must be reset() before reuse.
    std::string finish_hex();

  private:
    struct Context;      // owns the EVP_MD_CTX; defined in sha256.cpp
    Context& context();  // made and started on first use
    std::unique_ptr<Context> ctx_;
};

// The lowercase hex SHA-256 of `bytes`, in one call.
std::string sha256_hex(std::string_view bytes);

}  // namespace litchi
