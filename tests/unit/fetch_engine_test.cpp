// The download engine on real sockets: its inbox. A long submit is queued a
// slice at a time, as the fair queue needs it (most of a long list waits as
// requests), and a cancel applies to every request submitted before it,
// also those still waiting; never to one submitted after it. The origin is
// a listener on 127.0.0.1 that never accepts: every connection waits in its
// backlog and no transfer ends by itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "blobs/blob_store.hpp"
#include "fetch/engine.hpp"
#include "loopback_listener.hpp"

namespace litchi {
namespace {

class SilentOrigin {
  public:
    SilentOrigin() {
        const auto listener = listen_on_loopback(1024);
        fd_ = listener.fd;
        port_ = listener.port;
    }
    ~SilentOrigin() { ::close(fd_); }
    std::string url(std::uint64_t i) const {
        return "http://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(i) + ".png";
    }

  private:
    int fd_ = -1;
    int port_ = 0;
};

// A closed port on 127.0.0.1: every connection is refused at once.
std::string refused_url() {
    const auto listener = listen_on_loopback(1);
    ::close(listener.fd);
    return "http://127.0.0.1:" + std::to_string(listener.port) + "/x.png";
}

class EngineInbox : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("litchi-engine-test-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        limits_.concurrency = 8;
        limits_.allow_private = true;
        limits_.network_threads = GetParam();
        blobs_ = std::make_unique<BlobStore>(dir_, BlobLayout::flat);
        start_engine();
    }

    // With limits_ as they are now.
    void start_engine() {
        engine_.reset();
        engine_ =
            std::make_unique<Engine>(limits_, *blobs_, [this](std::vector<FetchResult>&& batch) {
                std::lock_guard lock(mutex_);
                for (const auto& r : batch) reasons_[r.id] = r.reason;
                changed_.notify_all();
            });
    }
    void TearDown() override {
        engine_->stop();
        engine_.reset();
        blobs_.reset();
        std::filesystem::remove_all(dir_);
    }

    // Nothing ends by itself on the silent origin: a request a cancel missed
    // stays queued or hangs there, and the count stops short.
    std::map<std::uint64_t, FailureReason> wait_for_results(std::size_t n) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, std::chrono::seconds(30), [&] { return reasons_.size() >= n; });
        return reasons_;
    }

    std::filesystem::path dir_;
    FetchLimits limits_;
    std::unique_ptr<BlobStore> blobs_;
    std::unique_ptr<Engine> engine_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::uint64_t, FailureReason> reasons_;  // by request id
};

constexpr std::uint64_t kRequests = 20'000;  // most wait in the inbox as requests

std::vector<FetchRequest> silent_requests(const SilentOrigin& origin,
                                          std::vector<std::uint64_t>& ids) {
    std::vector<FetchRequest> requests;
    for (std::uint64_t i = 0; i < kRequests; ++i) {
        requests.push_back({i, origin.url(i)});
        ids.push_back(i);
    }
    return requests;
}

TEST_P(EngineInbox, ACancelAfterALongSubmitEndsEveryRequestOfIt) {
    SilentOrigin origin;
    std::vector<std::uint64_t> ids;
    engine_->submit(silent_requests(origin, ids));
    engine_->cancel(ids);

    auto reasons = wait_for_results(kRequests);
    ASSERT_EQ(reasons.size(), kRequests);
    for (const auto& [id, reason] : reasons)
        ASSERT_EQ(reason, FailureReason::cancelled) << "request " << id;
}

// Cancelling an id nobody submitted is ignored, even while a long submit
// waits in the inbox: a request submitted after that cancel, with that id,
// runs (here it is refused by a closed port).
TEST_P(EngineInbox, ACancelNeverEndsARequestSubmittedAfterIt) {
    SilentOrigin origin;
    std::vector<std::uint64_t> ids;
    engine_->submit(silent_requests(origin, ids));
    constexpr std::uint64_t kLater = kRequests + 1;
    engine_->cancel({kLater});
    engine_->submit({{kLater, refused_url()}});
    engine_->cancel(ids);  // ends the silent ones

    auto reasons = wait_for_results(kRequests + 1);
    ASSERT_EQ(reasons.size(), kRequests + 1);
    EXPECT_EQ(reasons[kLater], FailureReason::connect);
    EXPECT_EQ(reasons[0], FailureReason::cancelled);
    EXPECT_EQ(reasons[kRequests - 1], FailureReason::cancelled);
}

// The inbox is taken as the fair queue needs it, but not only then: when
// what is queued cannot fill the free slots (all for a host at its
// --per-host limit), more of the list is taken, so a host further down it
// is not starved. Here the first 6,000 requests go to one silent host (2 at
// a time), the last 10 to a closed port: those must all end (refused).
TEST_P(EngineInbox, FreeSlotsTakeMoreOfTheListThanTheQueueWants) {
    limits_.per_host = 2;
    start_engine();
    SilentOrigin origin;
    std::vector<FetchRequest> requests;
    constexpr std::uint64_t kSilent = 6000, kRefused = 10;
    for (std::uint64_t i = 0; i < kSilent; ++i) requests.push_back({i, origin.url(i)});
    const std::string refused = refused_url();
    for (std::uint64_t i = kSilent; i < kSilent + kRefused; ++i) requests.push_back({i, refused});
    engine_->submit(std::move(requests));

    auto reasons = wait_for_results(kRefused);
    ASSERT_EQ(reasons.size(), kRefused);
    for (const auto& [id, reason] : reasons) {
        EXPECT_GE(id, kSilent);
        EXPECT_EQ(reason, FailureReason::connect) << "request " << id;
    }
}

INSTANTIATE_TEST_SUITE_P(NetworkThreads, EngineInbox, ::testing::Values(1, 2));

}  // namespace
}  // namespace litchi
