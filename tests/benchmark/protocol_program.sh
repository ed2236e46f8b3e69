#!/bin/sh
# A non-Python benchmarked program: speaks the line protocol on IPEXRUN_REPORT_FD with
# printf. Instance i sends the latencies listed in $BENCH_LATENCIES_<i> (space-separated
# seconds), one sample each, after the start barrier; BENCH_GARBAGE=1 adds bad lines.
set -eu
fd=${IPEXRUN_REPORT_FD:?not started by ipexrun --benchmark-report}
eval "list=\${BENCH_LATENCIES_${IPEXRUN_INSTANCE_INDEX}:-0.001}"
{
    printf 'm program protocol_program.sh\nready\n' >&"$fd"
    read -r answer <&"$fd"
    [ "$answer" = go ] || { echo "expected go, got '$answer'" >&2; exit 3; }
    [ "${BENCH_GARBAGE:-0}" = 1 ] && printf 'bogus words here\nr one 0.1\n' >&"$fd"
    for t in $list; do printf 'r 1 %s\n' "$t"; done >&"$fd"
    printf 'end\n' >&"$fd"
}
echo "sent $(echo $list | wc -w) records"
