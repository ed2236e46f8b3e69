#!/usr/bin/env bash
# Cost of a distributed launch through ipexrun against the same bare MPI command, measured
# in one hyperfine run per MPI: `ipexrun --nnodes 1 --nprocs-per-node 4 --mpi M --no-python
# true` (one MPI command starting `ipexrun --rank-wrapper` four times, each planning and
# binding its share, then running `true`) against the exact command ipexrun builds (taken
# from its --dry-run) with the wrapper replaced by `true`. Target: at most 1.2x.
# One node here: four ranks on this machine. (On the namespace cluster of tests/distributed
# the same comparison is 2 nodes x 2 ranks.)
#   usage: benchmarks/distributed/overhead.sh [path/to/ipexrun]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ipexrun=$(realpath "${1:-${IPEXRUN:-$root/build/launcher/ipexrun}}")
ranks=${RANKS:-4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"

commands=()
for mpi in hydra openmpi; do
    program=mpiexec.$mpi
    command -v "$program" >/dev/null || { echo "$program not found: skipped"; continue; }
    args=(--nnodes 1 --nprocs-per-node "$ranks" --mpi "$mpi" --master-port 29631 --no-python true)
    # The bare line: ipexrun's own MPI command up to the rank wrapper, then the program.
    bare=$("$ipexrun" --dry-run "${args[@]}" | /usr/bin/python3 -c '
import json, shlex, sys
doc = json.load(sys.stdin)
command, wrapper = doc["command"], doc["nodes"][0]["command"]
print(shlex.join(command[: len(command) - len(wrapper)] + ["true"]))')
    commands+=(-n "bare-$mpi" "$bare" -n "ipexrun-$mpi" "$ipexrun ${args[*]}")
done
[ ${#commands[@]} -gt 0 ] || { echo "no MPI launcher found"; exit 1; }

# Quiet runs: the ranks' info lines go to stderr.
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$out/mpi.json" "${commands[@]}" \
    >/dev/null 2>&1

/usr/bin/python3 - "$out/mpi.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
print(f"{'command':<16} {'mean ms':>9} {'stddev':>8} {'min ms':>8}")
for name, r in results.items():
    print(f"{name:<16} {r['mean'] * 1e3:9.2f} {r['stddev'] * 1e3:8.2f} {r['min'] * 1e3:8.2f}")
for mpi in ("hydra", "openmpi"):
    if f"bare-{mpi}" not in results:
        continue
    bare, ours = results[f"bare-{mpi}"]["mean"], results[f"ipexrun-{mpi}"]["mean"]
    ratio = ours / bare
    print(f"{mpi}: ipexrun / bare = {ratio:.2f}x (+{(ours - bare) * 1e3:.1f} ms; "
          f"target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}")
PY
