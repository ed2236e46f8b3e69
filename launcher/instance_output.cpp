#include "instance_output.h"

#include <unistd.h>

#include <cerrno>

namespace ipex::launcher {

bool write_fully(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

InstanceOutput::InstanceOutput(int index, int log_fd, int terminal_stdout, int terminal_stderr)
    : prefix_("[" + std::to_string(index) + "] "),
      log_fd_(log_fd),
      terminal_{terminal_stdout, terminal_stderr} {}

void InstanceOutput::add(OutputStream stream, const char* data, std::size_t size) {
    std::string& partial = partial_[static_cast<int>(stream)];
    std::string lines;  // the complete lines of this chunk, newline-terminated
    for (std::size_t i = 0; i < size; ++i) {
        partial.push_back(data[i]);
        if (data[i] == '\n' || partial.size() >= kMaxLine) {
            if (partial.back() != '\n') partial.push_back('\n');
            lines += partial;
            partial.clear();
        }
    }
    if (!lines.empty()) emit(stream, lines);
}

void InstanceOutput::finish(OutputStream stream) {
    std::string& partial = partial_[static_cast<int>(stream)];
    if (partial.empty()) return;
    partial.push_back('\n');
    emit(stream, partial);
    partial.clear();
}

void InstanceOutput::emit(OutputStream stream, const std::string& lines) {
    std::string prefixed;
    prefixed.reserve(lines.size() + 16);
    std::size_t start = 0;
    while (start < lines.size()) {
        const std::size_t end = lines.find('\n', start) + 1;  // every line ends with '\n'
        prefixed += prefix_;
        prefixed.append(lines, start, end - start);
        start = end;
    }
    // A terminal that went away (EPIPE) only loses the live view; the instance goes on.
    write_fully(terminal_[static_cast<int>(stream)], prefixed.data(), prefixed.size());
    if (log_fd_ >= 0 && log_error_ == 0 && !write_fully(log_fd_, lines.data(), lines.size()))
        log_error_ = errno;
}

}  // namespace ipex::launcher
