#!/usr/bin/env bash
# Measures trainmeter::torch::gather on loopback Gloo: N ranks of dist_rank (a tiny model, a
# FileStore), STEPS steps each, for each N given. Prints one row per N: gather wall time on the
# root, bytes each rank handed to the process group (payload_bytes) and wrote to descriptors during
# gather() (/proc/self/io wchar: sockets, plus the merged report file on the root), the root's peak
# RSS, and the size of a rank's own report (what the old full-report gather sent per rank).
#
#   tests/distributed/bench_gather.sh build/tests/bin/dist_rank STEPS N1 N2 ...
set -euo pipefail
DIST_RANK=${1:?usage: bench_gather.sh DIST_RANK STEPS N...}
STEPS=${2:?}
shift 2
printf '| ranks | root gather wall | payload per non-root rank | wchar per non-root rank (max) | root wchar | root peak RSS | rank 1 peak RSS | rank report (old payload per rank) |\n'
printf '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for n in "$@"; do
  dir=$(mktemp -d /tmp/tm-bench-gather.XXXXXX)
  pids=()
  for ((r = 0; r < n; ++r)); do
    OMP_NUM_THREADS=1 "$DIST_RANK" store="$dir/store" rank=$r world="$n" out="$dir" \
      steps="$STEPS" timeout_ms=60000 >"$dir/rank$r.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  python3 - "$dir" "$n" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
g = [json.load(open(f"{d}/gather.rank{r}.json")) for r in range(n)]
assert g[0]["merged_written"] and not g[0]["missing_ranks"], g[0]
others = g[1:]
print(f"| {n} | {g[0]['wall_ns']/1e6:.1f} ms | {others[0]['payload_bytes']:,} B | "
      f"{max(x['written_bytes'] for x in others):,} B | {g[0]['written_bytes']:,} B | "
      f"{g[0]['peak_rss_bytes']/2**20:.1f} MiB | {g[1]['peak_rss_bytes']/2**20:.1f} MiB | "
      f"{os.path.getsize(f'{d}/run.rank1.json'):,} B |")
PY
  rm -rf "$dir"
done
