// SHA-256 against the FIPS 180-2 test vectors, one-shot and streamed in
// pieces (as the engine feeds it a download), reuse after reset(), and a
// hasher used only after a reset or a move.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "crypto/sha256.hpp"

namespace litchi {
namespace {

constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* kTwoBlocks =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr const char* kMillionA =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
constexpr const char* kTwoBlockInput = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(Sha256, OneShotVectors) {
    EXPECT_EQ(sha256_hex(""), kEmpty);
    EXPECT_EQ(sha256_hex("abc"), kAbc);
    EXPECT_EQ(sha256_hex(kTwoBlockInput), kTwoBlocks);
    EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')), kMillionA);
}

TEST(Sha256, StreamedInPiecesIsTheSame) {
    const std::string input(1'000'000, 'a');
    for (std::size_t piece : {1u, 63u, 64u, 65u, 4096u, 100'000u}) {
        Sha256 hasher;
        for (std::size_t at = 0; at < input.size(); at += piece) {
            hasher.update(std::string_view(input).substr(at, piece));
        }
        EXPECT_EQ(hasher.finish_hex(), kMillionA) << "pieces of " << piece;
    }
}

TEST(Sha256, ResetStartsOverAndMovesKeepTheState) {
    Sha256 hasher;
    hasher.update("garbage", 7);
    hasher.reset();
    hasher.update("ab", 2);
    Sha256 moved = std::move(hasher);
    moved.update("c", 1);
    EXPECT_EQ(moved.finish_hex(), kAbc);
    moved.reset();
    EXPECT_EQ(moved.finish_hex(), kEmpty);
}

// A hasher makes its context on first use: one never fed, reset or moved
// before that still gives the digest of nothing, and can be fed afterwards.
TEST(Sha256, AnUnusedHasherDigestsNothing) {
    Sha256 fresh;
    EXPECT_EQ(fresh.finish_hex(), kEmpty);
    Sha256 reset_first;
    reset_first.reset();
    Sha256 moved = std::move(reset_first);
    moved.update("abc", 3);
    EXPECT_EQ(moved.finish_hex(), kAbc);
}

}  // namespace
}  // namespace litchi
