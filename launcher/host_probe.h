// The pre-flight reachability check of a distributed launch: every other host must answer
// `AGENT HOST true` (ssh by default) within a time limit. The probes run while the MPI
// starts (see start_gate.h), under a supervisor that reaps every child it sees, so each
// probe reports its agent's exit status through a pipe rather than through its own.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

namespace ipex::launcher {

inline constexpr std::chrono::seconds kHostProbeTimeout{10};

// The hosts that are not this machine, in order. Throws DistributedError naming the first
// host that does not resolve (the caller checks this before anything starts).
std::vector<std::string> remote_hosts(const std::vector<std::string>& hosts,
                                      const std::string& hostfile);

// Probes every host at once. "" when all answered, else one line naming the first host that
// did not (its exit status or the time limit) or why the agent could not be started.
std::string probe_hosts(const std::vector<std::string>& hosts, const std::string& agent,
                        std::chrono::milliseconds timeout = kHostProbeTimeout);

// The addresses `host` resolves to; empty when it does not.
std::vector<sockaddr_storage> resolve_host(const std::string& host);

// True when `host` resolves to an address of this machine (loopback or an interface's).
bool is_local_address(const std::string& host);

}  // namespace ipex::launcher
