#include "terminal_log_sink.h"

#include <spdlog/details/os.h>
#include <unistd.h>

#include <string_view>

#include "terminal_write.h"

namespace ipex::launcher {

namespace {

// The colours of spdlog's own console sinks.
std::string_view level_colour(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
            return "\033[37m";
        case spdlog::level::debug:
            return "\033[36m";
        case spdlog::level::info:
            return "\033[32m";
        case spdlog::level::warn:
            return "\033[33m\033[1m";
        case spdlog::level::err:
            return "\033[31m\033[1m";
        case spdlog::level::critical:
            return "\033[1m\033[41m";
        default:
            return "";
    }
}

constexpr std::string_view kColourReset = "\033[m";

}  // namespace

TerminalLogSink::TerminalLogSink(int fd)
    : fd_(fd), colour_(isatty(fd) && spdlog::details::os::is_color_terminal()) {}

int TerminalLogSink::error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
}

void TerminalLogSink::sink_it_(const spdlog::details::log_msg& msg) {
    if (error_ != 0) return;
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string line(formatted.data(), formatted.size());
    if (colour_ && msg.color_range_end > msg.color_range_start) {
        line.insert(msg.color_range_end, kColourReset);
        line.insert(msg.color_range_start, level_colour(msg.level));
    }
    error_ = write_to_terminal(fd_, line.data(), line.size());
}

}  // namespace ipex::launcher
