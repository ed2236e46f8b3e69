#!/usr/bin/env bash
# Launch overhead of `ipexrun --ninstances 2 --no-python true` against bare exec of `true`
# and against torch's run_cpu with the same options, measured in one run with hyperfine.
# Target: ipexrun within 5 ms of bare exec.
#   usage: benchmarks/launcher/launch_overhead.sh [path/to/ipexrun]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ipexrun=${1:-${IPEXRUN:-$root/build/launcher/ipexrun}}
floor=${SPAWN_FLOOR:-${IPEX_BUILD_DIR:-$root/build}/benchmarks/launcher/spawn_floor}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Quiet runs: only the summary table would differ, and it goes to stderr.
# "ipexrun" is the same options as run_cpu; ipexrun then preloads tcmalloc and libiomp5,
# which run_cpu cannot find on Debian (it does not search the multiarch folder), and whose
# own start-up (tcmalloc's ~12 ms here) is the program's cost, not the launcher's.
# "ipexrun-bare" runs the instances with the environment run_cpu really gives them.
# "floor" starts the same two `true`s with posix_spawn and waits, doing nothing else: what
# any launcher costs on this machine before it plans, binds or supervises anything.
hyperfine -N --warmup 5 --runs 40 --export-json "$out/fast.json" \
    -n bare "true" \
    -n floor "$floor 2 true" \
    -n ipexrun "$ipexrun --ninstances 2 --no-python true" \
    -n ipexrun-bare "$ipexrun --ninstances 2 --no-python --memory-allocator default --omp-runtime default true" \
    >/dev/null
# run_cpu refuses a non-empty ./logs (its default log folder): give it a fresh one each run.
mkdir -p "$out/peer"
(cd "$out/peer" && hyperfine -N --warmup 1 --runs 8 --prepare "rm -rf logs" \
    --export-json "$out/run_cpu.json" \
    -n run_cpu "/usr/bin/python3 -m torch.backends.xeon.run_cpu --ninstances 2 --no_python true" \
    >/dev/null)

/usr/bin/python3 - "$out/fast.json" "$out/run_cpu.json" <<'PY'
import json, sys
results = {}
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        results[r["command"]] = r
bare, peer = results["bare"], results["run_cpu"]
ms = lambda r: r["mean"] * 1e3
print(f"{'command':<13} {'mean ms':>9} {'stddev':>8} {'min ms':>8}")
for name in ("bare", "floor", "ipexrun", "ipexrun-bare", "run_cpu"):
    r = results[name]
    print(f"{name:<13} {ms(r):9.2f} {r['stddev'] * 1e3:8.2f} {r['min'] * 1e3:8.2f}")
for name in ("ipexrun", "ipexrun-bare"):
    over = ms(results[name]) - ms(bare)
    print(f"{name} overhead over bare exec: {over:.2f} ms (target <= 5 ms): "
          f"{'met' if over <= 5 else 'NOT met'}; run_cpu / {name}: "
          f"{ms(peer) / ms(results[name]):.1f}x")
floor = results["floor"]
print(f"floor (posix_spawn of the two instances, nothing else): {ms(floor) - ms(bare):.2f} ms over bare; "
      f"ipexrun-bare is {ms(results['ipexrun-bare']) - ms(floor):.2f} ms over the floor")
PY
