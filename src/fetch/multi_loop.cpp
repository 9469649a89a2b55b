// See multi_loop.hpp.
#include "fetch/multi_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <system_error>

namespace litchi {
namespace {

// curl_multi_assign's mark on a socket already in the epoll set.
char registered_mark;

}  // namespace

MultiLoop::MultiLoop(CURLM* multi) : multi_(multi) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
        int err = errno;
        close(epoll_fd_);
        throw std::system_error(err, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
        int err = errno;
        close(wake_fd_);
        close(epoll_fd_);
        throw std::system_error(err, std::generic_category(), "epoll_ctl");
    }
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &MultiLoop::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
}

MultiLoop::~MultiLoop() {
    // The multi handle may outlive us (and call back while it cleans up).
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, nullptr);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, nullptr);
    close(wake_fd_);
    close(epoll_fd_);
}

int MultiLoop::on_socket(CURL*, curl_socket_t s, int what, void* self, void* socketp) {
    auto* loop = static_cast<MultiLoop*>(self);
    if (what == CURL_POLL_REMOVE) {
        // Fails harmlessly when libcurl closed the socket first (closing
        // removed it from the set).
        epoll_ctl(loop->epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
        return 0;
    }
    epoll_event ev{};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = s;
    int op = socketp != nullptr ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epoll_fd_, op, s, &ev) != 0) {
        // The mark and the set disagree (a socket closed and its number
        // reused): take the other operation.
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(loop->epoll_fd_, op, s, &ev) != 0) return -1;
    }
    if (socketp == nullptr) curl_multi_assign(loop->multi_, s, &registered_mark);
    return 0;
}

void MultiLoop::act(curl_socket_t s, int select_bits) {
    int running = 0;
    curl_multi_socket_action(multi_, s, select_bits, &running);
}

void MultiLoop::run_due_timer() {
    long ms = -1;
    curl_multi_timeout(multi_, &ms);
    if (ms == 0) act(CURL_SOCKET_TIMEOUT, 0);
}

void MultiLoop::wait(std::chrono::milliseconds max_wait) {
    long curl_ms = -1;
    curl_multi_timeout(multi_, &curl_ms);
    long timeout = static_cast<long>(std::max<std::int64_t>(max_wait.count(), 0));
    if (curl_ms >= 0) timeout = std::min(timeout, curl_ms);

    std::array<epoll_event, 64> events;
    int n = epoll_wait(epoll_fd_, events.data(), int(events.size()), int(timeout));
    for (int i = 0; i < n; ++i) {
        const auto& ev = events[i];
        if (ev.data.fd == wake_fd_) {
            std::uint64_t count = 0;
            [[maybe_unused]] auto got = read(wake_fd_, &count, sizeof count);
            continue;
        }
        int bits = 0;
        if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) bits |= CURL_CSELECT_IN;
        if (ev.events & EPOLLOUT) bits |= CURL_CSELECT_OUT;
        if (ev.events & EPOLLERR) bits |= CURL_CSELECT_ERR;
        act(ev.data.fd, bits);
    }
    run_due_timer();
}

void MultiLoop::wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto put = write(wake_fd_, &one, sizeof one);
}

}  // namespace litchi
