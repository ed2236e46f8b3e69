// The TCP plumbing of benchmark reports across nodes: the launching ipexrun's listening port,
// the address ranks are told to reach it at, and the rank side's connection.
#pragma once

#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>

namespace ipex::launcher {

// This machine's address as seen from `peers` (host names or addresses): the source address
// of the route to the first one that is another machine; if all are this machine, the first
// one's own address; "" when none resolves (then listen everywhere).
std::string address_facing(const std::vector<std::string>& peers);

// A listening TCP socket on `host` (a numeric address; "" = every address of this machine),
// on a port the system picks.
class ReportListener {
  public:
    explicit ReportListener(const std::string& host);  // throws std::runtime_error
    ~ReportListener();
    ReportListener(const ReportListener&) = delete;
    ReportListener& operator=(const ReportListener&) = delete;
    int fd() const { return fd_; }
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
};

// "host:port", with an IPv6 host in brackets.
std::string join_address(const std::string& host, int port);

// "host:port" or "[v6]:port" as host and port; no colon: all of it is the port.
std::pair<std::string, std::string> split_address(const std::string& address);

// A blocking connected socket to host:port within `timeout_ms`; -1 with errno set otherwise.
int connect_within(const std::string& host, const std::string& port, int timeout_ms);

// Writes all of `line`, waiting at most `timeout_ms` whenever the socket is full; false if
// the peer is gone or too slow.
bool send_all(int fd, const std::string& line, int timeout_ms);

// "10.0.0.2" for an IPv4 or IPv4-mapped peer, else the IPv6 text.
std::string peer_text(const sockaddr_storage& address);

// 32 hex digits from the system's random source: a job's key, so that the port takes
// reports only from the ranks it started.
std::string random_key();

}  // namespace ipex::launcher
