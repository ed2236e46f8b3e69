// How the watchdog finds every process of a run once the launcher is gone, wherever the
// kernel has re-parented it: the instances get a variable holding a random run id, every
// descendant inherits it, and the watchdog looks for the id in each /proc/<pid>/environ.
// These are the pure parts. The ones the watchdog calls allocate nothing and touch no
// errno: it shares the launcher's memory, not its thread (see cleanup_watchdog.cpp).
#pragma once

#include <cstddef>
#include <string>

// For code that runs in the watchdog: sanitizer runtimes keep per-thread state it may not use.
#define IPEX_WATCHDOG_SAFE __attribute__((no_sanitize("address", "undefined")))

namespace ipex::launcher {

inline constexpr char kRunIdVariable[] = "IPEXRUN_RUN_ID";

// The variable's value for a run's instances: the ids inherited from runs this one belongs
// to (an ipexrun started inside another's instance), then its own, separated by spaces, so
// that an outer run's watchdog still recognises the inner run's processes. `inherited` may
// be null.
std::string run_id_value(const char* inherited, const std::string& id);

// Finds a text of up to kMaxLength bytes in a stream read piece by piece; a match may
// straddle pieces (Knuth-Morris-Pratt, so that no byte is looked at twice).
class TextFinder {
  public:
    static constexpr std::size_t kMaxLength = 64;

    // An empty or longer text is never found.
    TextFinder(const char* text, std::size_t length);

    // True once the text has been seen in everything fed since the last reset().
    bool feed(const char* data, std::size_t size);
    void reset();
    bool found() const { return found_; }

  private:
    char text_[kMaxLength];
    std::size_t length_ = 0;
    std::size_t fallback_[kMaxLength];  // longest proper border of text_[0..i]
    std::size_t matched_ = 0;
    bool found_ = false;
};

// When the sweep is over. Each pass kills what it finds; the sweep ends after two passes in
// a row found nothing new and no process in the middle of an exec (whose environment reads as
// empty until the new program's is in place), or after kMaxPasses (a process that keeps
// forking faster than it is found, or an exec stuck in the kernel).
class SweepRounds {
  public:
    static constexpr int kMaxPasses = 200;
    static constexpr int kQuietPassesToEnd = 2;

    // Called after each pass with how many processes it killed that no earlier pass had,
    // and how many it could not judge yet (exec_in_progress); true: pass again.
    bool another(std::size_t found, std::size_t undecided);
    int passes() const { return passes_; }

  private:
    int passes_ = 0;
    int quiet_ = 0;
};

// From the text of /proc/<pid>/stat: true while the process is between the two halves of an
// exec (the new program's memory is in place, its environment not yet: env_end is 0). False
// for zombies and kernel threads (no memory at all), and for texts without the field
// (kernels before 3.5).
bool exec_in_progress(const char* stat, std::size_t size);

// The process id a /proc entry name stands for, or 0 ("self", "sys", ...).
int pid_from_name(const char* name);

// Reads the whitespace-separated numbers of /proc/<pid>/task/<tid>/children piece by piece
// (a number may straddle pieces).
class PidListReader {
  public:
    // Writes the numbers completed in `data` to `out`, which must have room for
    // size / 2 + 1 of them, and returns how many there were.
    std::size_t feed(const char* data, std::size_t size, int* out);
    // At the end of the text: the last number, if it was not followed by a separator.
    std::size_t finish(int* out);

  private:
    long pending_ = 0;
};

}  // namespace ipex::launcher
