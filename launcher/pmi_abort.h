// MPICH hydra does not end a job when one of its processes fails: the others run on until
// they end by themselves. A rank that fails ends the whole job the way MPI_Abort does, with
// PMI-1's abort command on the connection hydra gave it (PMI_FD). Open MPI and srun
// (--kill-on-bad-exit) stop the job on their own.
#pragma once

#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

// Asks hydra to kill every rank and exit with `code`. False when this process has no PMI
// connection (not under hydra) or hydra did not answer.
bool abort_hydra_job(const allocator::Environment& env, int code);

}  // namespace ipex::launcher
