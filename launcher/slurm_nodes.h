// Slurm's names for the nodes of an allocation: the first host of a compressed host list
// ("n[01-04,7],gpu3" as in SLURM_JOB_NODELIST) and a node's address as `scontrol show node`
// reports it. Pure.
#pragma once

#include <optional>
#include <string>

namespace ipex::launcher {

// The first host `scontrol show hostnames LIST` would print: the first entry, each bracket
// replaced by its first number (zero padding kept). nullopt for an empty or malformed list.
std::optional<std::string> first_slurm_host(const std::string& host_list);

// NodeAddr from the output of `scontrol show node [-o] NAME` (Slurm fills it with the node
// name when slurm.conf gives no address). nullopt when there is none.
std::optional<std::string> slurm_node_address(const std::string& scontrol_output);

}  // namespace ipex::launcher
