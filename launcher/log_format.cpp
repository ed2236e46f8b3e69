#include "log_format.h"

#include <spdlog/pattern_formatter.h>

#include <new>

#include "ipex/affinity/user_text.h"

namespace ipex::launcher {
namespace {

class OneLineMessage : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const std::string text =
            affinity::one_line({msg.payload.data(), static_cast<std::size_t>(msg.payload.size())});
        dest.append(text.data(), text.data() + text.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<OneLineMessage>();
    }
};

}  // namespace

std::unique_ptr<spdlog::formatter> one_line_formatter(const std::string& pattern) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<OneLineMessage>('v').set_pattern(pattern);
    return formatter;
}

std::string error_text(const std::exception& error) {
    if (dynamic_cast<const std::bad_alloc*>(&error)) return "out of memory";
    return affinity::one_line(error.what());
}

}  // namespace ipex::launcher
