#include "orphan_sweep.h"

namespace ipex::launcher {

namespace {

constexpr long kMaxPid = 4194304;  // PID_MAX_LIMIT on 64-bit Linux

}  // namespace

std::string run_id_value(const char* inherited, const std::string& id) {
    if (inherited == nullptr || *inherited == '\0') return id;
    return std::string(inherited) + " " + id;
}

TextFinder::TextFinder(const char* text, std::size_t length) {
    if (length == 0 || length > kMaxLength) return;  // length_ 0: never found
    length_ = length;
    for (std::size_t i = 0; i < length; ++i) text_[i] = text[i];
    fallback_[0] = 0;
    std::size_t border = 0;
    for (std::size_t i = 1; i < length; ++i) {
        while (border > 0 && text_[i] != text_[border]) border = fallback_[border - 1];
        if (text_[i] == text_[border]) ++border;
        fallback_[i] = border;
    }
}

IPEX_WATCHDOG_SAFE bool TextFinder::feed(const char* data, std::size_t size) {
    if (found_ || length_ == 0) return found_;
    for (std::size_t k = 0; k < size; ++k) {
        while (matched_ > 0 && data[k] != text_[matched_]) matched_ = fallback_[matched_ - 1];
        if (data[k] == text_[matched_] && ++matched_ == length_) {
            found_ = true;
            break;
        }
    }
    return found_;
}

IPEX_WATCHDOG_SAFE void TextFinder::reset() {
    matched_ = 0;
    found_ = false;
}

IPEX_WATCHDOG_SAFE bool SweepRounds::another(std::size_t found, std::size_t undecided) {
    ++passes_;
    quiet_ = found > 0 || undecided > 0 ? 0 : quiet_ + 1;
    return quiet_ < kQuietPassesToEnd && passes_ < kMaxPasses;
}

IPEX_WATCHDOG_SAFE bool exec_in_progress(const char* stat, std::size_t size) {
    // Fields after the command name, which ends at the last ')': 3 state, 9 flags, 51 env_end
    // (numbered as in proc(5)).
    constexpr int kState = 3, kFlags = 9, kEnvEnd = 51;
    constexpr unsigned long kKernelThread = 0x00200000;  // PF_KTHREAD
    std::size_t at = size;
    while (at > 0 && stat[at - 1] != ')') --at;
    if (at == 0) return false;
    int field = 2;
    char state = 0;
    unsigned long flags = 0, env_end = 0;
    bool in_field = false;
    for (; at < size; ++at) {
        const char c = stat[at];
        if (c == ' ' || c == '\n') {
            in_field = false;
            continue;
        }
        if (!in_field) {
            in_field = true;
            if (++field > kEnvEnd) break;
            if (field == kState) state = c;
        }
        if (c < '0' || c > '9') continue;
        if (field == kFlags) flags = flags * 10 + static_cast<unsigned long>(c - '0');
        if (field == kEnvEnd) env_end = env_end * 10 + static_cast<unsigned long>(c - '0');
    }
    if (field < kEnvEnd) return false;
    return state != 'Z' && state != 'X' && (flags & kKernelThread) == 0 && env_end == 0;
}

IPEX_WATCHDOG_SAFE int pid_from_name(const char* name) {
    long pid = 0;
    for (const char* c = name; *c; ++c) {
        if (*c < '0' || *c > '9') return 0;
        pid = pid * 10 + (*c - '0');
        if (pid > kMaxPid) return 0;
    }
    return static_cast<int>(pid);
}

IPEX_WATCHDOG_SAFE std::size_t PidListReader::feed(const char* data, std::size_t size, int* out) {
    std::size_t count = 0;
    for (std::size_t k = 0; k < size; ++k) {
        if (data[k] >= '0' && data[k] <= '9') {
            pending_ = pending_ * 10 + (data[k] - '0');
            if (pending_ > kMaxPid) pending_ = kMaxPid + 1;  // not a pid, and never overflows
        } else {
            count += finish(out + count);
        }
    }
    return count;
}

IPEX_WATCHDOG_SAFE std::size_t PidListReader::finish(int* out) {
    const bool complete = pending_ > 0 && pending_ <= kMaxPid;
    if (complete) *out = static_cast<int>(pending_);
    pending_ = 0;
    return complete ? 1 : 0;
}

}  // namespace ipex::launcher
