// The engine's libcurl driver (fetch/multi_loop.hpp) on its own: socket
// actions over epoll, libcurl's timer asked before every wait, and the
// eventfd that other threads wake it with. Real sockets on 127.0.0.1; every
// wait is allowed an hour, so a wake-up the loop misses shows as a hang
// (the test's timeout), never as a flaky time limit.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fetch/multi_loop.hpp"
#include "loopback_listener.hpp"

namespace litchi {
namespace {

constexpr auto kForever = std::chrono::hours(1);

// One connection on 127.0.0.1: reads a request, then sends `answer` (or,
// when empty, nothing until the client hangs up).
class OneShotServer {
  public:
    explicit OneShotServer(std::string answer) : answer_(std::move(answer)) {
        const auto listener = listen_on_loopback(1);
        listener_ = listener.fd;
        port_ = listener.port;
        thread_ = std::thread([this] { serve(); });
    }
    ~OneShotServer() {
        thread_.join();
        ::close(listener_);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x.png"; }

  private:
    void serve() {
        int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        std::string request;
        char buf[1024];
        while (request.find("\r\n\r\n") == std::string::npos) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            request.append(buf, std::size_t(n));
        }
        if (!answer_.empty()) {
            ::send(fd, answer_.data(), answer_.size(), MSG_NOSIGNAL);
        }
        // Until the client closes (after the answer, or when it gives up).
        while (::recv(fd, buf, sizeof buf, 0) > 0) {
        }
        ::close(fd);
    }

    std::string answer_;
    int listener_ = -1;
    int port_ = 0;
    std::thread thread_;
};

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// Drives `multi` with the loop until `easy` is done; its result.
CURLcode run_until_done(CURLM* multi, MultiLoop& loop, CURL* easy) {
    loop.run_due_timer();
    while (true) {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &left))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) return msg->data.result;
        loop.wait(kForever);
    }
}

// A multi handle and its loop; the loop goes first at the end (it unhooks
// itself from the multi handle).
struct Multi {
    Multi() : multi(curl_multi_init()), loop(std::in_place, multi) {}
    ~Multi() {
        for (CURL* e : easies) {
            curl_multi_remove_handle(multi, e);
            curl_easy_cleanup(e);
        }
        loop.reset();
        curl_multi_cleanup(multi);
    }
    CURL* add(const std::string& url, std::string& body) {
        CURL* e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &collect);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
        easies.push_back(e);
        return e;
    }
    CURLM* multi;
    std::optional<MultiLoop> loop;
    std::vector<CURL*> easies;
};

TEST(FetchMultiLoop, ATransferRunsOnSocketActionsAlone) {
    OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    std::string body;
    Multi m;
    CURL* e = m.add(server.url(), body);
    curl_multi_add_handle(m.multi, e);
    EXPECT_EQ(run_until_done(m.multi, *m.loop, e), CURLE_OK);
    EXPECT_EQ(body, "hello");
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    EXPECT_EQ(status, 200);
}

TEST(FetchMultiLoop, LibcurlsOwnTimerEndsATransferNobodyAnswers) {
    // No socket becomes ready: only libcurl's deadline, asked before each
    // wait, can end this transfer.
    OneShotServer server("");
    std::string body;
    Multi m;
    CURL* e = m.add(server.url(), body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 200L);
    curl_multi_add_handle(m.multi, e);
    EXPECT_EQ(run_until_done(m.multi, *m.loop, e), CURLE_OPERATION_TIMEDOUT);
    EXPECT_TRUE(body.empty());
}

TEST(FetchMultiLoop, WakeEndsAWaitFromAnotherThread) {
    Multi m;
    for (int round = 0; round < 3; ++round) {
        std::thread waker([&] { m.loop->wake(); });
        m.loop->wait(kForever);  // nothing to watch: only the wake ends it
        waker.join();
    }
}

}  // namespace
}  // namespace litchi
