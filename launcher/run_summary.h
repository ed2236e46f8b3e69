// The table ipexrun prints when a run ends, and the words it uses for an instance's fate.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "launch_plan.h"
#include "spawner.h"

namespace ipex::launcher {

struct SummaryRow {
    int index = 0;
    std::vector<int> cpus;
    std::string nodes;                   // from memory_nodes_text()
    std::string status;                  // from status_text(), or "not started"
    std::optional<double> wall_seconds;  // none when the instance never started
};

// "exit 0", "exit 3", "killed by SIGTERM", from a waitpid() status.
std::string status_text(int wait_status);

// The launcher's view of a waitpid() status: the exit code, or 128 + the signal number.
int exit_code(int wait_status);

// Where an instance's memory was meant to go and what became of it: "0", "0,1",
// "0 (preferred)" after a refused bind, "0 (not bound)" when nothing binds it, "-" for none.
std::string memory_nodes_text(const InstanceLaunch& instance, BindMethod bind, MemoryPolicy memory);

// "0.42 s" below a minute, then "2m03s", then "1h02m03s".
std::string wall_time_text(double seconds);

// "ipexrun: summary" and one aligned row per instance (CPUs as compact ranges).
std::string summary_table(const std::vector<SummaryRow>& rows);

}  // namespace ipex::launcher
