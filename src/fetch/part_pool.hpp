// Pre-created, open .part files. Creating a file takes a journal handle and
// can stall behind a commit of the filesystem journal (which our own syncfs
// triggers); that must never stall the network thread, so the probe threads
// create files ahead and the network thread only takes one.
#pragma once

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <utility>
#include <vector>

namespace litchi {

class BlobStore;

class PartPool {
  public:
    PartPool(BlobStore& blobs, std::size_t target) : blobs_(blobs), target_(target) {}
    ~PartPool() { drain(); }
    PartPool(const PartPool&) = delete;
    PartPool& operator=(const PartPool&) = delete;

    // Network thread. Falls back to creating one inline when the pool is dry.
    // A pooled part that sat unwritten for half the orphan age is dropped:
    // another node sharing the blob folder may sweep it once it is as old as
    // the orphan age, and a download must not start into a file about to lose
    // its name (one already swept has no links left).
    int take(std::filesystem::path& path);

    // Probe threads, between jobs.
    void refill();

    // Closes and removes every pooled part; later refills do nothing.
    void drain();

  private:
    BlobStore& blobs_;
    std::size_t target_;
    std::mutex mutex_;
    std::vector<std::pair<int, std::filesystem::path>> ready_;
    bool closed_ = false;
};

}  // namespace litchi
