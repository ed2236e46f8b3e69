#include "report_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace ipex::launcher {
namespace {

struct AddressList {
    addrinfo* head = nullptr;
    AddressList(const std::string& host, const char* port, int socktype, int flags) {
        addrinfo hints{};
        hints.ai_socktype = socktype;
        hints.ai_flags = flags;
        if (getaddrinfo(host.c_str(), port, &hints, &head) != 0) head = nullptr;
    }
    ~AddressList() {
        if (head) freeaddrinfo(head);
    }
    AddressList(const AddressList&) = delete;
    AddressList& operator=(const AddressList&) = delete;
};

sockaddr_storage copy_of(const addrinfo* a) {
    sockaddr_storage s{};
    std::memcpy(&s, a->ai_addr, std::min<std::size_t>(a->ai_addrlen, sizeof s));
    return s;
}

// The local address the system would send from to reach `to`; "" if there is no route. A
// UDP connect only picks the route: nothing is sent.
std::string source_address(const addrinfo* to) {
    const int fd = socket(to->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    const bool routed = connect(fd, to->ai_addr, to->ai_addrlen) == 0 &&
                        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) == 0;
    close(fd);
    return routed ? peer_text(local) : "";
}

[[noreturn]] void refused(const char* what) {
    throw std::runtime_error(std::string("cannot ") + what +
                             " for benchmark reports: " + std::strerror(errno));
}

int bound_port(int fd) {
    sockaddr_storage bound{};
    socklen_t size = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size);
    return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                             : reinterpret_cast<sockaddr_in&>(bound).sin_port);
}

}  // namespace

std::string peer_text(const sockaddr_storage& address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text,
                  sizeof text);
    } else if (address.ss_family == AF_INET6) {
        const auto& a6 = reinterpret_cast<const sockaddr_in6&>(address).sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof text);
        else
            inet_ntop(AF_INET6, &a6, text, sizeof text);
    }
    return text;
}

std::string address_facing(const std::vector<std::string>& peers) {
    std::string own;  // of a peer that is this machine
    for (const auto& peer : peers) {
        const AddressList found(peer, "9", SOCK_DGRAM, 0);
        for (const addrinfo* a = found.head; a; a = a->ai_next) {
            const std::string source = source_address(a);
            if (source.empty()) continue;
            if (source != peer_text(copy_of(a))) return source;  // another machine
            if (own.empty()) own = source;
        }
    }
    return own;
}

ReportListener::ReportListener(const std::string& host) {
    if (host.empty()) {  // every address, IPv4 too, or IPv4 only where IPv6 is off
        fd_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in6 any6{};
        any6.sin6_family = AF_INET6;
        any6.sin6_addr = in6addr_any;
        const int off = 0;
        if (fd_ >= 0) setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&any6), sizeof any6) != 0) {
            if (fd_ >= 0) close(fd_);
            fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            sockaddr_in any4{};
            any4.sin_family = AF_INET;
            any4.sin_addr.s_addr = htonl(INADDR_ANY);
            if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&any4), sizeof any4) != 0)
                refused("open a port");
        }
    } else {
        const AddressList found(host, "0", SOCK_STREAM, AI_NUMERICHOST | AI_PASSIVE);
        if (!found.head) {
            errno = EADDRNOTAVAIL;
            refused(("listen on " + host).c_str());
        }
        fd_ = socket(found.head->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0 || bind(fd_, found.head->ai_addr, found.head->ai_addrlen) != 0)
            refused(("open a port on " + host).c_str());
    }
    if (listen(fd_, 256) != 0) refused("listen");
    port_ = bound_port(fd_);
}

ReportListener::~ReportListener() {
    if (fd_ >= 0) close(fd_);
}

std::string join_address(const std::string& host, int port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

std::pair<std::string, std::string> split_address(const std::string& address) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) return {"", address};
    std::string host = address.substr(0, colon);
    if (host.size() > 1 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return {host, address.substr(colon + 1)};
}

int connect_within(const std::string& host, const std::string& port, int timeout_ms) {
    const AddressList found(host, port.c_str(), SOCK_STREAM, 0);
    if (!found.head) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int error = EHOSTUNREACH;
    for (const addrinfo* a = found.head; a; a = a->ai_next) {
        const int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            error = errno;
            continue;
        }
        error = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (error == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            error = ETIMEDOUT;
            socklen_t size = sizeof error;
            if (poll(&p, 1, timeout_ms) == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        }
        if (error == 0) {
            // Handed over as it is: blocking, as a program writing with printf expects (the
            // Python API makes its own writes non-blocking).
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            return fd;
        }
        close(fd);
    }
    errno = error;
    return -1;
}

bool send_all(int fd, const std::string& line, int timeout_ms) {
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pollfd p{fd, POLLOUT, 0};
            if (poll(&p, 1, timeout_ms) <= 0) return false;
        } else {
            return false;
        }
    }
    return true;
}

std::string random_key() {
    std::random_device source;  // /dev/urandom or the CPU's generator
    std::string key;
    for (int i = 0; i < 4; ++i) key += fmt::format("{:08x}", source());
    return key;
}

}  // namespace ipex::launcher
