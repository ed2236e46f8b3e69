#include "instance_output.h"

#include <cerrno>
#include <utility>

#include "terminal_write.h"

namespace ipex::launcher {

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
