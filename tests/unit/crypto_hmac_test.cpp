// HMAC-SHA256 against the RFC 4231 test vectors (cases 1-4, 6 and 7; case 5
// is a truncated output, which Litchi never sends).
#include <gtest/gtest.h>

#include <string>

#include "crypto/hmac.hpp"

namespace litchi {
namespace {

std::string bytes(std::size_t n, unsigned char value) {
    return std::string(n, static_cast<char>(value));
}

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

TEST(HmacSha256, Rfc4231Case1) {
    EXPECT_EQ(hmac_sha256_hex(bytes(20, 0x0b), "Hi There"),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256, Rfc4231Case2KeyShorterThanTheOutput) {
    EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, Rfc4231Case3) {
    EXPECT_EQ(hmac_sha256_hex(bytes(20, 0xaa), bytes(50, 0xdd)),
              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256, Rfc4231Case4) {
    EXPECT_EQ(hmac_sha256_hex(from_hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                              bytes(50, 0xcd)),
              "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256, Rfc4231Case6KeyLongerThanABlock) {
    EXPECT_EQ(
        hmac_sha256_hex(bytes(131, 0xaa), "Test Using Larger Than Block-Size Key - Hash Key First"),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, Rfc4231Case7) {
    EXPECT_EQ(hmac_sha256_hex(bytes(131, 0xaa),
                              "This is a test using a larger than block-size key and a larger "
                              "than block-size data. The key needs to be hashed before being "
                              "used by the HMAC algorithm."),
              "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256, EmptyKeyAndMessage) {
    // Python: hmac.new(b"", b"", hashlib.sha256).hexdigest()
    EXPECT_EQ(hmac_sha256_hex("", ""),
              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

}  // namespace
}  // namespace litchi
