// HMAC-SHA256 (RFC 2104), for signing what Litchi sends to others: a
// completion webhook's body is signed with the job's secret so the receiver
// can tell it came from this server and was not changed on the way
// (X-Litchi-Signature: sha256=<hex>). OpenSSL's libcrypto, like sha256.hpp.
#pragma once

#include <string>
#include <string_view>

namespace litchi {

// The lowercase hex HMAC-SHA256 of `message` under `key` (64 characters).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

}  // namespace litchi
