// The .part file pool (see part_pool.hpp for why it exists).
#include "fetch/part_pool.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <tuple>

#include "blobs/blob_store.hpp"

namespace litchi {

int PartPool::take(std::filesystem::path& path) {
    const auto now = std::chrono::system_clock::now();
    while (true) {
        int fd = -1;
        {
            std::lock_guard lock(mutex_);
            if (ready_.empty()) break;
            std::tie(fd, path) = std::move(ready_.back());
            ready_.pop_back();
        }
        struct stat st {};
        if (::fstat(fd, &st) == 0 && st.st_nlink > 0 &&
            now - std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec) <
                blobs_.orphan_age() / 2)
            return fd;
        ::close(fd);
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
    return blobs_.create_part(path);
}

void PartPool::refill() {
    while (true) {
        {
            std::lock_guard lock(mutex_);
            if (ready_.size() >= target_ || closed_) return;
        }
        std::filesystem::path path;
        int fd = blobs_.create_part(path);
        if (fd < 0) return;  // the network thread will see the error itself
        std::lock_guard lock(mutex_);
        ready_.emplace_back(fd, std::move(path));
    }
}

void PartPool::drain() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& [fd, path] : ready_) {
        ::close(fd);
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
    ready_.clear();
}

}  // namespace litchi
