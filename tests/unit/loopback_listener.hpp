// A listening TCP socket on 127.0.0.1 at a port the kernel picks, for unit
// tests that need a real peer: what each test does with its connections
// (answer, hold, never accept) is its own.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace litchi {

struct LoopbackListener {
    int fd = -1;
    int port = 0;
};

// Throws std::runtime_error when the socket cannot listen.
inline LoopbackListener listen_on_loopback(int backlog) {
    LoopbackListener out;
    out.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(out.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (out.fd < 0 || ::bind(out.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(out.fd, backlog) != 0 ||
        ::getsockname(out.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (out.fd >= 0) ::close(out.fd);
        throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    out.port = ntohs(addr.sin_port);
    return out;
}

}  // namespace litchi
