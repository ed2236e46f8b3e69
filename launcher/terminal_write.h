// Writing to a file descriptor to the end, and to the launcher's own stdout and stderr, which
// another process reads and may stop reading without going away (a `Popen(stdout=PIPE)` never
// read, a terminal under Ctrl-S).
#pragma once

#include <cstddef>
#include <string>

namespace ipex::launcher {

// A terminal error: after a stop signal the terminal took nothing for kStallLimitMs. Waiting on
// would keep the launcher from stopping the instances at all, so what it did not take is
// dropped.
inline constexpr int kTerminalStalled = -1;
inline constexpr int kStallLimitMs = 1000;

// strerror(error), or what kTerminalStalled means.
std::string terminal_error_text(int error);

// Writes the whole buffer, retrying after EINTR and short writes; returns false with errno
// set when the descriptor refuses (a closed pipe, a full disk).
bool write_fully(int fd, const char* data, std::size_t size);

// write_fully for the launcher's stdout and stderr: waits for room as long as it takes, but
// notices a stop signal meanwhile (stop_signal_arrived) and gives up kStallLimitMs after it.
// Returns 0, an errno, or kTerminalStalled.
int write_to_terminal(int fd, const char* data, std::size_t size);

}  // namespace ipex::launcher
