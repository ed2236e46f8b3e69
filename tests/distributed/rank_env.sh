#!/bin/sh
# rank_env.sh hydra|openmpi|slurm PROGRAM [ARGS...]
# For bare launcher runs only: exports torchrun's RANK/WORLD_SIZE/LOCAL_RANK from the
# launcher's own rank variables, then runs PROGRAM (ipexrun does this itself).
case "$1" in
hydra) RANK=$PMI_RANK WORLD_SIZE=$PMI_SIZE LOCAL_RANK=$MPI_LOCALRANKID ;;
openmpi) RANK=$OMPI_COMM_WORLD_RANK WORLD_SIZE=$OMPI_COMM_WORLD_SIZE
         LOCAL_RANK=$OMPI_COMM_WORLD_LOCAL_RANK ;;
slurm) RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID ;;
*) echo "rank_env.sh: unknown launcher '$1' (hydra, openmpi or slurm)" >&2; exit 2 ;;
esac
if [ -z "$RANK" ] || [ -z "$WORLD_SIZE" ]; then
    echo "rank_env.sh: $1 set no rank variables" >&2
    exit 2
fi
export RANK WORLD_SIZE LOCAL_RANK
shift
exec "$@"
