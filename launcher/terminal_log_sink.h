// The launcher's own log lines on its stderr ("ipexrun: warning: ..."), written the way the
// instances' output is (write_to_terminal): a reader that takes nothing makes them wait, but a
// stop signal still ends the run.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <mutex>

namespace ipex::launcher {

class TerminalLogSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    // Colours the level (the formatter's %^...%$) when `fd` is a colour terminal.
    explicit TerminalLogSink(int fd);

    // errno of the first failed write, or kTerminalStalled; 0 if none failed. Lines after a
    // failure are dropped: a stalled reader would otherwise cost each line the stall limit.
    int error();

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}

  private:
    int fd_;
    bool colour_;
    int error_ = 0;
};

}  // namespace ipex::launcher
