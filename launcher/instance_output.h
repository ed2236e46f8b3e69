// What an instance prints, cut into lines: to the launcher's terminal with an "[index] "
// prefix (stdout to stdout, stderr to stderr) and, unprefixed, to the instance's log file.
// Only whole lines are passed on, so two instances never mix within a line. A carriage
// return ends a line too, so that progress bars stay live. The log file gets exactly the
// bytes the instance wrote; only the terminal copy gets a newline after an overlong piece
// or an unfinished last line.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "terminal_write.h"

namespace ipex::launcher {

enum class OutputStream { kStdout = 0, kStderr = 1 };

class InstanceOutput {
  public:
    // log_fd < 0: no log file. The terminal descriptors are parameters for tests.
    InstanceOutput(int index, int log_fd, int terminal_stdout = 1, int terminal_stderr = 2);
    // Any prefix ("[rank 3 n2] ", or "" to pass lines on as they are).
    InstanceOutput(std::string prefix, int log_fd, int terminal_stdout = 1,
                   int terminal_stderr = 2);

    // Bytes read from the instance; complete lines are written out at once.
    void add(OutputStream stream, const char* data, std::size_t size);

    // The stream ended: a last line without a newline is passed on (on the terminal, with a
    // newline).
    void finish(OutputStream stream);

    // Sees every complete line of the instance's stderr (without its line end) after it has
    // been passed on.
    void observe_stderr(std::function<void(const std::string&)> observer) {
        stderr_observer_ = std::move(observer);
    }

    // From now on, lines are kept back (up to kMaxHeld bytes, then passed on after all)
    // until release() passes them on in order, or drop() throws them and all later output
    // away. The stderr observer sees them when they are passed on.
    void hold();
    void release();
    void drop();

    // errno of the first failed write to the log file, 0 if none failed.
    int log_error() const { return log_error_; }

    // errno of the first failed write of `stream` to the terminal (a reader that went away,
    // a full device), or kTerminalStalled; 0 if none failed. Nothing more is written there
    // after a failure.
    int terminal_error(OutputStream stream) const {
        return terminal_error_[static_cast<int>(stream)];
    }

    // A line longer than this is passed on in pieces of this size (the log still gets the
    // bytes as they were).
    static constexpr std::size_t kMaxLine = 64 * 1024;
    static constexpr std::size_t kMaxHeld = 16 * 1024 * 1024;

  private:
    // Whole lines collected from one chunk: prefixed for the terminal, raw for the log.
    // `ended` says whether the text ends its line; if not, the terminal still gets one.
    struct Lines {
        std::string prefixed, raw;
        void add(const std::string& prefix, const std::string& text, bool ended) {
            prefixed += prefix;
            prefixed += text;
            if (!ended) prefixed += '\n';
            raw += text;
        }
    };
    void write_out(OutputStream stream, const Lines& lines);
    void pass_on(OutputStream stream, const Lines& lines);

    enum class Flow { kPass, kHold, kDrop };

    std::string prefix_;
    int log_fd_;
    int terminal_[2];
    std::string partial_[2];
    int log_error_ = 0;
    int terminal_error_[2] = {0, 0};
    Flow flow_ = Flow::kPass;
    std::vector<std::pair<OutputStream, Lines>> held_;
    std::size_t held_bytes_ = 0;
    std::function<void(const std::string&)> stderr_observer_;
};

}  // namespace ipex::launcher
