// Lets a distributed launch start the MPI while the pre-flight check (every host answers)
// is still running, without the user's program starting anywhere before the check passed.
// The launching ipexrun listens on a TCP port and tells every rank where in
// IPEXRUN_START_GATE ("host:port", the host being this machine's address facing the other
// nodes) and IPEXRUN_START_KEY (a random key of the job). Each rank's ipexrun wrapper
// connects, sends the key and waits for "go" before it starts the program. When the check
// fails the port closes without a word: no rank starts, and the launcher's supervisor, which
// held the MPI's output back meanwhile, prints the check's one line instead.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

inline constexpr const char* kStartGateVariable = "IPEXRUN_START_GATE";
inline constexpr const char* kStartKeyVariable = "IPEXRUN_START_KEY";

class StartGate {
  public:
    // Listens on `host` (a numeric address; "" = every address). Throws std::runtime_error.
    explicit StartGate(const std::string& host);
    ~StartGate();  // stops answering ranks
    StartGate(const StartGate&) = delete;
    StartGate& operator=(const StartGate&) = delete;

    // The two variables for the ranks' environment.
    allocator::Environment variables() const;

    // Runs `check` in a thread of its own ("" = pass, else the one-line reason to refuse),
    // then answers ranks "go" until this goes away, or closes the port. Once.
    void open_when(std::function<std::string()> check);

    // One line, once the check has ended: "go" or the reason (SupervisorOptions'
    // start_verdict_fd).
    int verdict_fd() const;

  private:
    struct State;
    std::unique_ptr<State> state_;
};

// The rank side: with IPEXRUN_START_GATE set, waits at most `timeout_ms` for the word to go
// and removes both variables (the program does not inherit them). "" when the rank may
// start, else why not, in one line.
std::string await_start(int timeout_ms);

}  // namespace ipex::launcher
