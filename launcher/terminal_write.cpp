#include "terminal_write.h"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "signals.h"

namespace ipex::launcher {

std::string terminal_error_text(int error) {
    return error == kTerminalStalled ? "nothing read it after the stop signal"
                                     : std::strerror(error);
}

bool write_fully(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Someone made our terminal non-blocking: wait for room instead of losing lines.
            pollfd ready{fd, POLLOUT, 0};
            poll(&ready, 1, -1);
            continue;
        }
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Each write is at most PIPE_BUF bytes after poll said there is room, which a pipe takes
// without blocking, so the wait happens in poll, in slices, where a stop signal is seen.
int write_to_terminal(int fd, const char* data, std::size_t size) {
    constexpr int kSliceMs = 100;
    int waited_after_stop_ms = 0;
    while (size > 0) {
        pollfd room{fd, POLLOUT, 0};
        const int ready = poll(&room, 1, kSliceMs);
        if (ready < 0 && errno != EINTR) return errno;
        if (ready <= 0) {
            if (stop_signal_arrived() && (waited_after_stop_ms += kSliceMs) >= kStallLimitMs)
                return kTerminalStalled;
            continue;
        }
        const ssize_t n = write(fd, data, std::min<std::size_t>(size, PIPE_BUF));
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n <= 0) return n < 0 ? errno : EIO;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

}  // namespace ipex::launcher
