#include "run_summary.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>

#include "ipex/affinity/cpu_list.h"
#include "signals.h"

namespace ipex::launcher {

std::string status_text(int wait_status) {
    if (WIFSIGNALED(wait_status)) return "killed by " + signal_name(WTERMSIG(wait_status));
    return "exit " + std::to_string(WEXITSTATUS(wait_status));
}

int exit_code(int wait_status) {
    return WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status) : WEXITSTATUS(wait_status);
}

std::string memory_nodes_text(const InstanceLaunch& instance, BindMethod bind,
                              MemoryPolicy memory) {
    if (instance.memory_nodes.empty()) return "-";
    const std::string nodes = affinity::format_id_list(instance.memory_nodes);
    switch (bind) {
        case BindMethod::kNumactl:
            return nodes;  // numactl -m does it
        case BindMethod::kTaskset:
        case BindMethod::kNone:
            return nodes + " (not bound)";
        case BindMethod::kDirect:
            break;
    }
    switch (memory) {
        case MemoryPolicy::kBind:
            return nodes;
        case MemoryPolicy::kPreferred:
            return std::to_string(instance.memory_nodes.front()) + " (preferred)";
        case MemoryPolicy::kNone:
            break;
    }
    return nodes + " (not bound)";
}

std::string wall_time_text(double seconds) {
    char text[32];
    if (seconds < 60) {
        std::snprintf(text, sizeof text, "%.2f s", seconds);
        return text;
    }
    const long total = static_cast<long>(seconds);
    if (total < 3600)
        std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
    else
        std::snprintf(text, sizeof text, "%ldh%02ldm%02lds", total / 3600, total / 60 % 60,
                      total % 60);
    return text;
}

std::string summary_table(const std::vector<SummaryRow>& rows) {
    std::vector<std::vector<std::string>> cells = {
        {"instance", "CPUs", "nodes", "status", "wall time"}};
    for (const SummaryRow& row : rows)
        cells.push_back({std::to_string(row.index), affinity::format_id_list(row.cpus), row.nodes,
                         row.status, row.wall_seconds ? wall_time_text(*row.wall_seconds) : "-"});
    std::vector<std::size_t> widths(cells[0].size(), 0);
    for (const auto& line : cells)
        for (std::size_t c = 0; c < line.size(); ++c)
            widths[c] = std::max(widths[c], line[c].size());

    std::string table = "ipexrun: summary\n";
    for (const auto& line : cells) {
        table += " ";
        for (std::size_t c = 0; c < line.size(); ++c) {
            table += " " + line[c];
            if (c + 1 < line.size()) table += std::string(widths[c] - line[c].size() + 1, ' ');
        }
        table += "\n";
    }
    return table;
}

}  // namespace ipex::launcher
