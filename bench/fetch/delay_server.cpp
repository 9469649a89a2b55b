// A latency-injecting static file server for the fetch benchmark's second
// case: every file of one folder, from memory, at /<name>, each response sent
// DELAY milliseconds after its request arrived, HTTP/1.1 keep-alive.
//
// Why not Python: the ideal the benchmark compares against assumes answers
// exactly DELAY ms after their requests. An asyncio server (the first
// versions, delay_server.py) held them ~0.6 ms late on average -- its epoll
// timeouts are whole milliseconds, rounded up -- and, answering all 64
// connections of a round in one burst, it read the next requests only after
// the burst: together ~1.5 ms a round that every client paid, a third of
// what litchi was measured over the ideal. Here one thread waits on epoll
// with a timerfd set to the next answer's due time to the nanosecond (timer
// slack 1 ns), and each request is timed from when the kernel received it
// (SO_TIMESTAMPNS), so one read after a burst of answers is not answered late.
//
// Build:  c++ -std=c++20 -O2 -o delay_server bench/fetch/delay_server.cpp
// Run:    delay_server DIR [DELAY_MS (50)] [PORT (0: any)]
// Prints `PORT <n>` on stdout once listening; SIGTERM/SIGINT stop it. Only
// 127.0.0.1. On SIGUSR1 and on stop it prints to stderr how late its answers
// were and how soon the client asked again (then counts anew).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <queue>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Nanos = std::int64_t;

Nanos to_ns(const timespec& ts) {
    return Nanos(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Nanos now_ns(clockid_t clock = CLOCK_MONOTONIC) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return to_ns(ts);
}

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "delay_server: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

std::string content_type(const std::string& name) {
    auto dot = name.rfind('.');
    std::string ext = dot == std::string::npos ? "" : name.substr(dot);
    if (ext == ".jpg") return "image/jpeg";
    if (ext == ".png") return "image/png";
    if (ext == ".gif") return "image/gif";
    if (ext == ".webp") return "image/webp";
    return "application/octet-stream";
}

std::unordered_map<std::string, std::string> load_responses(const std::string& folder) {
    std::unordered_map<std::string, std::string> responses;
    DIR* dir = opendir(folder.c_str());
    if (!dir) die(folder.c_str());
    while (dirent* entry = readdir(dir)) {
        std::string name = entry->d_name;
        if (name.empty() || name[0] == '.') continue;
        std::ifstream in(folder + "/" + name, std::ios::binary);
        if (!in) continue;
        std::string body((std::istreambuf_iterator<char>(in)), {});
        responses["/" + name] = "HTTP/1.1 200 OK\r\nContent-Type: " + content_type(name) +
                                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                                body;
    }
    closedir(dir);
    return responses;
}

const std::string kNotFound = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

struct Connection {
    int fd = -1;
    std::uint64_t serial = 0;  // which connection on that fd (fd numbers are reused)
    std::string in;            // bytes of requests not yet complete
    std::string out;           // answer bytes the socket did not take yet
    bool close_after = false;
    Nanos answered = 0;  // when its last answer was written (0: none yet)
};

struct Answer {
    Nanos due;
    std::uint64_t serial;  // ties: in the order the requests came
    int fd;
    std::uint64_t connection;  // Connection::serial of the one it was asked on
    const std::string* response;
    bool close;
    bool operator>(const Answer& other) const {
        return due != other.due ? due > other.due : serial > other.serial;
    }
};

class Server {
  public:
    Server(std::unordered_map<std::string, std::string> responses, Nanos delay)
        : responses_(std::move(responses)), delay_(delay) {}

    int listen_on(int port) {
        listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listen_fd_ < 0) die("socket");
        int one = 1;
        setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(std::uint16_t(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
        if (listen(listen_fd_, 1024) != 0) die("listen");
        socklen_t len = sizeof addr;
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        return ntohs(addr.sin_port);
    }

    void run() {
        epoll_ = epoll_create1(EPOLL_CLOEXEC);
        timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGUSR1);
        sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
        signals_ = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
        if (epoll_ < 0 || timer_ < 0 || signals_ < 0) die("epoll/timerfd/signalfd");
        watch(listen_fd_, EPOLLIN);
        watch(timer_, EPOLLIN);
        watch(signals_, EPOLLIN);
        epoll_event events[128];
        while (true) {
            int n = epoll_wait(epoll_, events, 128, -1);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) die("epoll_wait");
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == signals_) {
                    signalfd_siginfo info{};
                    [[maybe_unused]] auto r = read(signals_, &info, sizeof info);
                    if (info.ssi_signo != SIGUSR1) return;
                    report();
                    continue;
                }
                if (fd == listen_fd_) {
                    accept_all();
                } else if (fd == timer_) {
                    std::uint64_t expirations;
                    [[maybe_unused]] auto r = read(timer_, &expirations, sizeof expirations);
                    answer_due();
                } else if (events[i].events & EPOLLOUT) {
                    flush(fd);
                } else {
                    read_requests(fd);
                }
            }
        }
    }

    // To stderr: how late the answers were, and how soon the client sent its
    // next request on a connection after an answer was written (its
    // turnaround: reading the answer, and whatever it does before asking
    // again). Then counts anew (SIGUSR1 asks for it between runs).
    void report() {
        std::fprintf(stderr,
                     "delay_server: %zu answers, late by %s; next request %s after an answer\n",
                     late_.size(), summary(late_).c_str(), summary(turnaround_).c_str());
        late_.clear();
        turnaround_.clear();
    }

  private:
    static std::string summary(std::vector<Nanos> values) {
        if (values.empty()) return "(none)";
        std::sort(values.begin(), values.end());
        double sum = 0;
        for (Nanos x : values) sum += double(x);
        auto us = [](double ns) { return int(ns / 1000.0 + 0.5); };
        char text[160];
        std::snprintf(text, sizeof text, "mean %d us, p50 %d us, p99 %d us, max %d us",
                      us(sum / double(values.size())), us(double(values[values.size() / 2])),
                      us(double(values[values.size() * 99 / 100])), us(double(values.back())));
        return text;
    }

    void watch(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }

    void accept_all() {
        while (true) {
            int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
            auto& c = connections_[fd];
            c = Connection{};
            c.fd = fd;
            c.serial = ++connection_serial_;
            watch(fd, EPOLLIN | EPOLLRDHUP);
        }
    }

    void read_requests(int fd) {
        auto it = connections_.find(fd);
        if (it == connections_.end()) return;
        Connection& c = it->second;
        // When the kernel received the bytes (its clock is CLOCK_REALTIME),
        // on the monotonic clock the due times use.
        const Nanos realtime_to_monotonic = now_ns() - now_ns(CLOCK_REALTIME);
        char buf[16384];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
        while (true) {
            iovec iov{buf, sizeof buf};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            ssize_t n = recvmsg(fd, &msg, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n <= 0) {
                drop(fd);  // EOF or error
                return;
            }
            Nanos arrived = now_ns();
            for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                    timespec ts;
                    std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                    arrived = std::min(arrived, to_ns(ts) + realtime_to_monotonic);
                }
            }
            if (c.answered != 0 && c.in.empty()) turnaround_.push_back(arrived - c.answered);
            c.in.append(buf, std::size_t(n));
            take_requests(c, arrived);
        }
    }

    // The requests `c.in` holds whole, each answered `delay_` after `arrived`
    // (when the bytes that completed it came).
    void take_requests(Connection& c, Nanos arrived) {
        std::size_t end;
        while ((end = c.in.find("\r\n\r\n")) != std::string::npos) {
            std::string head = c.in.substr(0, end);
            c.in.erase(0, end + 4);
            std::string path;
            auto sp1 = head.find(' ');
            auto sp2 = sp1 == std::string::npos ? sp1 : head.find(' ', sp1 + 1);
            if (sp2 != std::string::npos) path = head.substr(sp1 + 1, sp2 - sp1 - 1);
            path = path.substr(0, path.find('?'));
            std::string lower = head;
            std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
            auto found = responses_.find(path);
            schedule({arrived + delay_, ++answer_serial_, c.fd, c.serial,
                      found == responses_.end() ? &kNotFound : &found->second,
                      lower.find("connection: close") != std::string::npos});
        }
    }

    void schedule(Answer a) {
        const bool earliest = due_.empty() || a.due < due_.top().due;
        due_.push(a);
        if (earliest) arm();
    }

    void arm() {
        itimerspec spec{};
        if (!due_.empty()) {
            Nanos at = std::max<Nanos>(due_.top().due, 1);
            spec.it_value.tv_sec = at / 1'000'000'000;
            spec.it_value.tv_nsec = at % 1'000'000'000;
        }
        timerfd_settime(timer_, TFD_TIMER_ABSTIME, &spec, nullptr);
    }

    void answer_due() {
        while (!due_.empty() && due_.top().due <= now_ns()) {
            Answer a = due_.top();
            due_.pop();
            auto it = connections_.find(a.fd);
            if (it == connections_.end() || it->second.serial != a.connection) continue;
            late_.push_back(now_ns() - a.due);
            Connection& c = it->second;
            c.out += *a.response;
            c.close_after = c.close_after || a.close;
            c.answered = now_ns();
            flush(a.fd);
        }
        arm();
    }

    void flush(int fd) {
        auto it = connections_.find(fd);
        if (it == connections_.end()) return;
        Connection& c = it->second;
        std::size_t sent = 0;
        while (sent < c.out.size()) {
            ssize_t n = write(fd, c.out.data() + sent, c.out.size() - sent);
            if (n > 0) {
                sent += std::size_t(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            drop(fd);
            return;
        }
        c.out.erase(0, sent);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | (c.out.empty() ? 0u : std::uint32_t(EPOLLOUT));
        ev.data.fd = fd;
        epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
        if (c.out.empty() && c.close_after) drop(fd);
    }

    void drop(int fd) {
        epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        connections_.erase(fd);
    }

    std::unordered_map<std::string, std::string> responses_;
    Nanos delay_;
    int listen_fd_ = -1, epoll_ = -1, timer_ = -1, signals_ = -1;
    std::unordered_map<int, Connection> connections_;
    std::uint64_t connection_serial_ = 0, answer_serial_ = 0;
    std::priority_queue<Answer, std::vector<Answer>, std::greater<>> due_;
    std::vector<Nanos> late_, turnaround_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DIR [DELAY_MS] [PORT]\n", argv[0]);
        return 2;
    }
    const double delay_ms = argc > 2 ? std::atof(argv[2]) : 50.0;
    const int port = argc > 3 ? std::atoi(argv[3]) : 0;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake at the due time, not up to 50 us after
    signal(SIGPIPE, SIG_IGN);
    Server server(load_responses(argv[1]), Nanos(delay_ms * 1e6));
    std::printf("PORT %d\n", server.listen_on(port));
    std::fflush(stdout);
    server.run();
    server.report();
    return 0;
}
