// Lets a distributed launch start the MPI without first checking that every host answers,
// while no rank's program starts before that is known. The launching ipexrun listens on a TCP
// port and tells every rank where in IPEXRUN_START_GATE ("host:port", the host being this
// machine's address facing the other nodes) and IPEXRUN_START_KEY (a random key of the job).
// Each rank's ipexrun wrapper connects, sends the key and waits for "go" before it starts the
// program. The gate opens when every rank has come (then every host has answered the MPI), or
// when the pre-flight check (every host answers the agent), run if the ranks are slow to come,
// passes. When the check fails the port closes without a word: no rank starts, and the
// launcher's supervisor, which held the MPI's output back meanwhile, prints the check's one
// line instead.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

inline constexpr const char* kStartGateVariable = "IPEXRUN_START_GATE";
inline constexpr const char* kStartKeyVariable = "IPEXRUN_START_KEY";

class StartGate {
  public:
    // Listens on `host` (a numeric address; "" = every address) for `ranks` ranks. Throws
    // std::runtime_error.
    StartGate(const std::string& host, int ranks);
    ~StartGate();  // stops answering ranks
    StartGate(const StartGate&) = delete;
    StartGate& operator=(const StartGate&) = delete;

    // The two variables for the ranks' environment.
    allocator::Environment variables() const;

    // Starts answering ranks, in a thread of its own, until this goes away. `check` ("" =
    // pass, else the one-line reason to refuse) runs in another thread if not every rank has
    // come within `check_delay`. Once.
    void open_when(std::function<std::string()> check, std::chrono::milliseconds check_delay);

    // One line once the gate has opened or shut: "go" or the reason (SupervisorOptions'
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
// The same with the gate's address and key given.
std::string await_start(const std::string& address, const std::string& key, int timeout_ms);

}  // namespace ipex::launcher
