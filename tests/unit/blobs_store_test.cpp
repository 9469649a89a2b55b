// The blob store: atomic renames, dedup, layouts, crash leftovers, and
// several stores (nodes) sharing one root: part names, the orphan sweep,
// concurrent commits of the same blob.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

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
    static std::string read(const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    // Sets a file's mtime to `age` before `now` (the clock the sweep is given).
    static void age_file(const std::filesystem::path& p, std::chrono::system_clock::time_point now,
                         std::chrono::seconds age) {
        std::filesystem::last_write_time(p, std::chrono::file_clock::from_sys(now - age));
    }
    std::vector<std::filesystem::path> parts() const {
        std::vector<std::filesystem::path> found;
        std::error_code ec;
        for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
            if (e.path().extension() == ".part") found.push_back(e.path());
        return found;
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

TEST_F(BlobStoreTest, OldLeftoverPartsFromACrashAreRemovedOnOpen) {
    std::filesystem::create_directories(dir / ".tmp");
    write(dir / ".tmp" / "123-4.part", "half a file");
    age_file(dir / ".tmp" / "123-4.part", std::chrono::system_clock::now(),
             std::chrono::seconds(61));
    {
        BlobStore store(dir, BlobLayout::flat);
        EXPECT_FALSE(std::filesystem::exists(dir / ".tmp" / "123-4.part"));
    }
    // The empty .tmp folder does not outlive the store.
    EXPECT_FALSE(std::filesystem::exists(dir / ".tmp"));
}

TEST_F(BlobStoreTest, NodeNamesAreSanitizedIntoShortTags) {
    EXPECT_EQ(BlobStore::sanitize_node_tag("host:9527"), "host_9527");
    EXPECT_EQ(BlobStore::sanitize_node_tag("a.b-c_D9"), "a.b-c_D9");
    EXPECT_EQ(BlobStore::sanitize_node_tag("../x y/\xc3\xa9"), ".._x_y___");
    EXPECT_EQ(BlobStore::sanitize_node_tag(""), "node");
    EXPECT_EQ(BlobStore::sanitize_node_tag(std::string(100, 'n')), std::string(32, 'n'));
    BlobStore store(dir, BlobLayout::flat, {.node = "host:9527"});
    EXPECT_EQ(store.node_tag(), "host_9527");
    BlobStore unnamed(dir, BlobLayout::flat);
    EXPECT_FALSE(unnamed.node_tag().empty());  // the host name, sanitized
}

TEST_F(BlobStoreTest, PartNamesCarryTagPidNonceAndCounter) {
    BlobStore store(dir, BlobLayout::flat, {.node = "h:1"});
    auto name = store.new_part_path().filename().string();
    std::smatch m;
    ASSERT_TRUE(
        std::regex_match(name, m, std::regex("h_1-([0-9]+)-([0-9a-f]{16})-([0-9]+)\\.part")))
        << name;
    EXPECT_EQ(m[1].str(), std::to_string(::getpid()));
}

TEST_F(BlobStoreTest, TwoStoresWithTheSameTagNeverShareAPartName) {
    BlobStore a(dir, BlobLayout::flat, {.node = "same"});
    BlobStore b(dir, BlobLayout::flat, {.node = "same"});
    std::set<std::filesystem::path> names;
    std::mutex m;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            BlobStore& store = t % 2 ? a : b;
            std::vector<std::filesystem::path> mine;
            for (int i = 0; i < 1000; ++i) mine.push_back(store.new_part_path());
            std::lock_guard lock(m);
            names.insert(mine.begin(), mine.end());
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(names.size(), 4000u);
}

TEST_F(BlobStoreTest, SweepRemovesOnlyOldPartsOfOthers) {
    BlobStore store(dir, BlobLayout::flat, {.node = "me", .orphan_age = std::chrono::seconds(60)});
    const auto now = std::chrono::system_clock::now() + std::chrono::hours(24);
    auto tmp = dir / ".tmp";
    write(tmp / "other-1-00000000000000aa-0.part", "crashed");
    age_file(tmp / "other-1-00000000000000aa-0.part", now, std::chrono::seconds(60));
    write(tmp / "other-2-00000000000000bb-0.part", "downloading");
    age_file(tmp / "other-2-00000000000000bb-0.part", now, std::chrono::seconds(59));
    write(tmp / "future.part", "clock ahead");
    age_file(tmp / "future.part", now, std::chrono::seconds(-600));
    write(tmp / "notes.txt", "not a part");
    age_file(tmp / "notes.txt", now, std::chrono::hours(1));
    std::filesystem::path own;
    int fd = store.create_part(own);
    ASSERT_GE(fd, 0);
    ::close(fd);
    age_file(own, now, std::chrono::hours(1));  // ours and live, however old

    EXPECT_EQ(store.sweep_orphans(now), 1u);
    EXPECT_FALSE(std::filesystem::exists(tmp / "other-1-00000000000000aa-0.part"));
    EXPECT_TRUE(std::filesystem::exists(tmp / "other-2-00000000000000bb-0.part"));
    EXPECT_TRUE(std::filesystem::exists(tmp / "future.part"));
    EXPECT_TRUE(std::filesystem::exists(tmp / "notes.txt"));
    EXPECT_TRUE(std::filesystem::exists(own));

    EXPECT_EQ(store.sweep_orphans(now + std::chrono::seconds(1)), 1u);
    EXPECT_FALSE(std::filesystem::exists(tmp / "other-2-00000000000000bb-0.part"));
    EXPECT_TRUE(std::filesystem::exists(own));
    EXPECT_EQ(store.sweep_orphans(now + std::chrono::seconds(1)), 0u);
    std::filesystem::remove(own);
}

TEST_F(BlobStoreTest, YoungPartsOfAnotherStoreSurviveANewStore) {
    BlobStore a(dir, BlobLayout::sharded, {.node = "a:1"});
    std::filesystem::path young;
    int fd = a.create_part(young);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "abc", 3), 3);
    ::close(fd);
    // A part of an earlier run of this very node, long dead.
    auto stale = dir / ".tmp" / "a_1-1-0123456789abcdef-7.part";
    write(stale, "stale");
    age_file(stale, std::chrono::system_clock::now(), std::chrono::minutes(5));

    {
        BlobStore b(dir, BlobLayout::sharded, {.node = "b:1"});
        EXPECT_TRUE(std::filesystem::exists(young));
        EXPECT_FALSE(std::filesystem::exists(stale));
    }
    // b went first and .tmp was not empty: a's part is still there to commit.
    EXPECT_TRUE(std::filesystem::exists(young));
    std::string sha = "cd" + std::string(62, '1');
    EXPECT_FALSE(a.commit({{young, sha, ImageFormat::png}})[0]);
    EXPECT_EQ(read(a.absolute_path(sha, ImageFormat::png)), "abc");
}

TEST_F(BlobStoreTest, APartIsCreatedEvenAfterAnotherStoreRemovedTheEmptyTmp) {
    BlobStore a(dir, BlobLayout::flat, {.node = "a"});
    { BlobStore b(dir, BlobLayout::flat, {.node = "b"}); }
    EXPECT_FALSE(std::filesystem::exists(dir / ".tmp"));
    std::filesystem::path part;
    int fd = a.create_part(part);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ::close(fd);
    EXPECT_EQ(part.parent_path(), dir / ".tmp");
    EXPECT_TRUE(std::filesystem::exists(part));
    std::filesystem::remove(part);
}

TEST_F(BlobStoreTest, OrphanAgeUnderASecondIsRefused) {
    EXPECT_THROW(
        BlobStore(dir, BlobLayout::flat, {.node = "n", .orphan_age = std::chrono::seconds(0)}),
        std::invalid_argument);
}

// Two nodes storing the same images at the same moment: every commit succeeds,
// a blob once visible never disappears and is never torn, and no part is left.
TEST_F(BlobStoreTest, ConcurrentCommitsOfTheSameBlobsByTwoStores) {
    BlobStore a(dir, BlobLayout::sharded, {.node = "a:1"});
    BlobStore b(dir, BlobLayout::sharded, {.node = "b:1"});
    const std::vector<std::string> shas = {"ab" + std::string(62, '0'), "ab" + std::string(62, '1'),
                                           "cd" + std::string(62, '2')};
    auto content = [](std::size_t k) {
        std::string bytes(256 * 1024 + k, '\0');
        for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 31 + k * 7) & 0xff);
        return bytes;
    };
    std::vector<std::string> contents;
    for (std::size_t k = 0; k < shas.size(); ++k) contents.push_back(content(k));

    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::thread watcher([&] {
        std::vector<bool> seen(shas.size(), false);
        while (!done.load()) {
            for (std::size_t k = 0; k < shas.size(); ++k) {
                auto path = a.absolute_path(shas[k], ImageFormat::png);
                int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    if (seen[k]) ++failures;  // was there, then gone
                    continue;
                }
                seen[k] = true;
                std::string got;
                char buf[65536];
                ssize_t n;
                while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, std::size_t(n));
                ::close(fd);
                if (got != contents[k]) ++failures;  // torn or wrong
            }
        }
    });

    std::vector<std::thread> writers;
    for (int t = 0; t < 6; ++t) {
        writers.emplace_back([&, t] {
            BlobStore& store = t % 2 ? a : b;
            for (int round = 0; round < 12; ++round) {
                // Batches of 1 (fsync per file) and of 5 (syncfs) alternate.
                std::vector<PendingBlob> batch;
                std::size_t size = round % 2 ? 5 : 1;
                for (std::size_t i = 0; i < size; ++i) {
                    std::size_t k = (std::size_t(t) + std::size_t(round) + i) % shas.size();
                    std::filesystem::path part;
                    int fd = store.create_part(part);
                    if (fd < 0) {
                        ++failures;
                        return;
                    }
                    const auto& bytes = contents[k];
                    if (::write(fd, bytes.data(), bytes.size()) != ssize_t(bytes.size()))
                        ++failures;
                    ::close(fd);
                    batch.push_back({part, shas[k], ImageFormat::png});
                }
                for (const auto& ec : store.commit(batch))
                    if (ec) ++failures;
            }
        });
    }
    for (auto& w : writers) w.join();
    done = true;
    watcher.join();

    EXPECT_EQ(failures.load(), 0);
    for (std::size_t k = 0; k < shas.size(); ++k)
        EXPECT_EQ(read(a.absolute_path(shas[k], ImageFormat::png)), contents[k]) << k;
    EXPECT_TRUE(parts().empty());
}

}  // namespace
}  // namespace litchi
