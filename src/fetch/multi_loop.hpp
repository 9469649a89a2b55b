// Drives a libcurl multi handle with curl_multi_socket_action over epoll: a
// pass acts only on the sockets that are ready and on libcurl's own timer,
// where curl_multi_perform visits every transfer on every pass and
// curl_multi_poll builds and polls the whole socket set again (with 64
// transfers answered 50 ms after their requests: 12 % less CPU, the same
// wall time; bench/fetch/findings.md).
//
// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION); when it
// next needs a call without socket activity is asked before every wait
// (curl_multi_timeout: its timer callback is not called again for a deadline
// it announced before, so one acted on a hair early would be lost). An eventfd
// in the same epoll set lets other threads wake the loop. All but wake()
// belong to the thread that drives the multi handle.
#pragma once

#include <curl/curl.h>

#include <chrono>

namespace litchi {

class MultiLoop {
  public:
    explicit MultiLoop(CURLM* multi);  // throws std::system_error without epoll/eventfd
    ~MultiLoop();
    MultiLoop(const MultiLoop&) = delete;
    MultiLoop& operator=(const MultiLoop&) = delete;

    // Lets libcurl do what its timer asked for, if that time has come (a
    // handle just added asks for "now"). Transfers that finish show up in
    // curl_multi_info_read.
    void run_due_timer();

    // Waits until a socket libcurl watches is ready, libcurl's timer is due,
    // wake() was called, or `max_wait` passed, whichever comes first; then
    // acts on the ready sockets (and on the timer, when due).
    void wait(std::chrono::milliseconds max_wait);

    // Any thread: ends the current (or the next) wait() early.
    void wake();

  private:
    static int on_socket(CURL* easy, curl_socket_t s, int what, void* self, void* socketp);
    void act(curl_socket_t s, int select_bits);

    CURLM* multi_;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;
};

}  // namespace litchi
