// The one command a distributed launch runs: an MPI launcher (MPICH hydra, Open MPI) or
// Slurm's srun starting `ipexrun --rank-wrapper ...` once per rank. Pure: the caller says
// which programs exist and what the hosts are; the result is an argv vector, never a shell line.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipex/allocator/env_policy.h"
#include "options.h"

namespace ipex::launcher {

enum class MpiKind { kHydra, kOpenMpi, kSlurm };

struct MpiPrograms {                     // absolute paths of what PATH holds
    std::optional<std::string> hydra;    // mpiexec.hydra
    std::optional<std::string> openmpi;  // mpiexec.openmpi
    std::optional<std::string> srun;
};

struct MpiSelection {
    MpiKind kind = MpiKind::kHydra;
    std::string program;
};

// A distributed launch that cannot start; the message is one line (exit 2 for usage, 1 else).
struct DistributedError : std::runtime_error {
    DistributedError(const std::string& message, int exit_code = 1)
        : std::runtime_error(message), code(exit_code) {}
    int code;
};

// auto: srun inside a Slurm allocation, else hydra, else Open MPI.
MpiSelection choose_mpi(MpiChoice choice, const MpiPrograms& found, bool in_slurm_allocation);

const char* mpi_name(MpiKind kind);

struct MpiJob {
    MpiSelection mpi;
    int nnodes = 1;
    int ppn = 1;
    std::vector<std::string> hosts;          // the first nnodes hosts; empty = this machine only
    bool first_host_local = false;           // hydra must then be told which host it runs on
    std::string agent;                       // remote shell; "" = the MPI's default (ssh)
    std::vector<std::string> extra;          // --extra-mpi-params, split into words
    bool as_root = false;                    // Open MPI refuses root without being told
    std::vector<std::string> forwarded_env;  // variable names Open MPI must pass on (-x)
    std::vector<std::string> rank_argv;      // what every rank runs
};

std::vector<std::string> mpi_command(const MpiJob& job);

// Words of --extra-mpi-params the way a shell splits them ('single', "double" quotes and
// backslashes), without expanding anything. Throws DistributedError on an open quote.
std::vector<std::string> split_words(const std::string& text);

// The ipexrun command each rank runs: the user's options minus those only the top-level
// launcher uses, the resolved master address and port, then the program and its arguments.
std::vector<std::string> rank_wrapper_argv(const std::string& self,
                                           const std::vector<std::string>& option_args,
                                           const std::string& master_addr, int master_port,
                                           const std::string& program,
                                           const std::vector<std::string>& program_args);

// Names of the variables a rank's environment needs from the launching one (search paths,
// OpenMP/allocator/oneCCL/gloo/torch settings), for MPIs that do not pass everything on.
std::vector<std::string> forwarded_variables(const allocator::Environment& env);

// Hosts of a hostfile's text: one a line; blank lines and '#' comments skipped; a trailing
// ":slots" or " slots=N" is dropped (ipexrun sets ranks per node itself).
std::vector<std::string> parse_hostfile(const std::string& text);

}  // namespace ipex::launcher
