#include "pmi_abort.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "instance_output.h"

namespace ipex::launcher {
namespace {

// One reply line, waiting at most `timeout_ms` for it.
bool read_reply(int fd, int timeout_ms) {
    std::string line;
    while (line.find('\n') == std::string::npos) {
        pollfd ready{fd, POLLIN, 0};
        const int n = poll(&ready, 1, timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        char buffer[256];
        const ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        line.append(buffer, static_cast<std::size_t>(got));
    }
    return line.find("rc=0") != std::string::npos;
}

}  // namespace

bool abort_hydra_job(const allocator::Environment& env, int code) {
    const auto it = env.find("PMI_FD");
    if (it == env.end() || it->second.empty()) return false;
    char* end = nullptr;
    const long fd = std::strtol(it->second.c_str(), &end, 10);
    if (*end != '\0' || fd < 0 || fd > 1 << 20) return false;
    const int pmi = static_cast<int>(fd);
    const std::string init = "cmd=init pmi_version=1 pmi_subversion=1\n";
    if (!write_fully(pmi, init.data(), init.size()) || !read_reply(pmi, 2000)) return false;
    const std::string abort = "cmd=abort exitcode=" + std::to_string(code) + "\n";
    return write_fully(pmi, abort.data(), abort.size());
}

}  // namespace ipex::launcher
