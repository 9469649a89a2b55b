// The blob store: atomic renames, dedup, layouts, and crash leftovers.
#include <gtest/gtest.h>

#include <fstream>

#include "blobs/blob_store.hpp"

namespace litchi {
namespace {

class BlobStoreTest : public ::testing::Test {
  protected:
    std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                ("litchi-blobs-" + std::to_string(::getpid()) + "-" +
                                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
    void TearDown() override { std::filesystem::remove_all(dir); }

    static void write(const std::filesystem::path& p, const std::string& bytes) {
        std::ofstream(p, std::ios::binary) << bytes;
    }
};

TEST_F(BlobStoreTest, FlatLayoutRenamesAndDeduplicates) {
    BlobStore store(dir, BlobLayout::flat);
    std::string sha(64, 'b');
    auto a = store.new_part_path();
    auto b = store.new_part_path();
    EXPECT_NE(a, b);
    EXPECT_EQ(a.parent_path(), dir / ".tmp");
    write(a, "same bytes");
    write(b, "same bytes");
    auto errors = store.commit({{a, sha, ImageFormat::png}, {b, sha, ImageFormat::png}});
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_FALSE(errors[0]);
    EXPECT_FALSE(errors[1]);
    EXPECT_TRUE(store.contains(sha, ImageFormat::png));
    EXPECT_EQ(store.relative_path(sha, ImageFormat::png), sha + ".png");
    EXPECT_FALSE(std::filesystem::exists(a));
    EXPECT_FALSE(std::filesystem::exists(b));
    store.remove(sha, ImageFormat::png);
    EXPECT_FALSE(store.contains(sha, ImageFormat::png));
}

TEST_F(BlobStoreTest, ShardedLayoutUsesTwoCharacterFolders) {
    BlobStore store(dir, BlobLayout::sharded);
    std::string sha = "ab" + std::string(62, 'c');
    auto part = store.new_part_path();
    write(part, "x");
    EXPECT_FALSE(store.commit({{part, sha, ImageFormat::jpeg}})[0]);
    EXPECT_EQ(store.relative_path(sha, ImageFormat::jpeg), "ab/" + sha + ".jpg");
    EXPECT_TRUE(std::filesystem::is_regular_file(dir / "ab" / (sha + ".jpg")));
}

TEST_F(BlobStoreTest, MissingPartIsReportedPerBlob) {
    BlobStore store(dir, BlobLayout::flat);
    auto good = store.new_part_path();
    write(good, "ok");
    auto errors =
        store.commit({{dir / ".tmp" / "gone.part", std::string(64, 'd'), ImageFormat::gif},
                      {good, std::string(64, 'e'), ImageFormat::gif}});
    EXPECT_TRUE(errors[0]);
    EXPECT_FALSE(errors[1]);
    EXPECT_TRUE(store.contains(std::string(64, 'e'), ImageFormat::gif));
}

TEST_F(BlobStoreTest, LeftoverPartsFromACrashAreRemovedOnOpen) {
    std::filesystem::create_directories(dir / ".tmp");
    write(dir / ".tmp" / "123-4.part", "half a file");
    {
        BlobStore store(dir, BlobLayout::flat);
        EXPECT_FALSE(std::filesystem::exists(dir / ".tmp" / "123-4.part"));
    }
    // The empty .tmp folder does not outlive the store.
    EXPECT_FALSE(std::filesystem::exists(dir / ".tmp"));
}

}  // namespace
}  // namespace litchi
