#include "instance_output.h"

#include "signals.h"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace ipex::launcher {

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

std::string terminal_error_text(int error) {
    return error == kTerminalStalled ? "nothing read it after the stop signal"
                                     : std::strerror(error);
}

namespace {

// write_fully for the launcher's own stdout and stderr, which another process reads: it waits
// for room before each write (at most PIPE_BUF bytes, which a pipe with room takes without
// blocking), so that a stop signal is noticed while the reader takes nothing. Returns 0, an
// errno, or kTerminalStalled.
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

}  // namespace

InstanceOutput::InstanceOutput(int index, int log_fd, int terminal_stdout, int terminal_stderr)
    : InstanceOutput("[" + std::to_string(index) + "] ", log_fd, terminal_stdout, terminal_stderr) {
}

InstanceOutput::InstanceOutput(std::string prefix, int log_fd, int terminal_stdout,
                               int terminal_stderr)
    : prefix_(std::move(prefix)), log_fd_(log_fd), terminal_{terminal_stdout, terminal_stderr} {}

void InstanceOutput::add(OutputStream stream, const char* data, std::size_t size) {
    std::string& partial = partial_[static_cast<int>(stream)];
    Lines lines;
    while (size > 0) {
        // A line ends with "\n", "\r\n" or a lone "\r" (progress bars redraw with "\r").
        std::size_t end = 0;
        while (end < size && data[end] != '\n' && data[end] != '\r') ++end;
        if (end == size) {
            partial.append(data, size);
            while (partial.size() >= kMaxLine) {  // no end in sight: pass it on in pieces
                lines.add(prefix_, partial.substr(0, kMaxLine), false);
                partial.erase(0, kMaxLine);
            }
            break;
        }
        ++end;
        if (data[end - 1] == '\r' && end < size && data[end] == '\n') ++end;
        partial.append(data, end);
        lines.add(prefix_, partial, true);
        partial.clear();
        data += end;
        size -= end;
    }
    write_out(stream, lines);
}

void InstanceOutput::finish(OutputStream stream) {
    std::string& partial = partial_[static_cast<int>(stream)];
    if (partial.empty()) return;
    Lines lines;
    lines.add(prefix_, partial, false);
    partial.clear();
    write_out(stream, lines);
}

void InstanceOutput::hold() {
    if (flow_ == Flow::kPass) flow_ = Flow::kHold;
}

void InstanceOutput::release() {
    if (flow_ != Flow::kHold) return;
    flow_ = Flow::kPass;
    for (const auto& [stream, lines] : held_) pass_on(stream, lines);
    held_.clear();
    held_bytes_ = 0;
}

void InstanceOutput::drop() {
    flow_ = Flow::kDrop;
    held_.clear();
    held_bytes_ = 0;
}

void InstanceOutput::write_out(OutputStream stream, const Lines& lines) {
    if (lines.raw.empty() || flow_ == Flow::kDrop) return;
    if (flow_ == Flow::kHold) {
        held_.emplace_back(stream, lines);
        held_bytes_ += lines.prefixed.size();
        if (held_bytes_ > kMaxHeld) release();  // memory over the one-line promise
        return;
    }
    pass_on(stream, lines);
}

void InstanceOutput::pass_on(OutputStream stream, const Lines& lines) {
    int& terminal_error = terminal_error_[static_cast<int>(stream)];
    if (terminal_error == 0)
        terminal_error = write_to_terminal(terminal_[static_cast<int>(stream)],
                                           lines.prefixed.data(), lines.prefixed.size());
    if (log_fd_ >= 0 && log_error_ == 0 &&
        !write_fully(log_fd_, lines.raw.data(), lines.raw.size()))
        log_error_ = errno;
    if (stream != OutputStream::kStderr || !stderr_observer_) return;
    std::size_t at = 0;
    while (at < lines.raw.size()) {
        std::size_t end = lines.raw.find_first_of("\r\n", at);
        if (end == std::string::npos) end = lines.raw.size();
        if (end > at) stderr_observer_(lines.raw.substr(at, end - at));
        at = end + 1;
    }
}

}  // namespace ipex::launcher
