#!/usr/bin/env bash
# Two simulated hosts: two Linux network namespaces joined by a veth pair, each rank in its own UTS
# namespace with its host's name, torchrun-style environment (RANK, WORLD_SIZE, LOCAL_RANK,
# LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), two ranks per host, Gloo over the veth addresses
# (10.77.0.1 and 10.77.0.2, which exist only inside these namespaces) and one fake powercap tree
# per host whose package and DRAM counters run at known watts. Checks that the merged report
# counts each host's CPU and DRAM energy once and that the sum equals watts x time within 3 %.
#
#   two_hosts_test.sh DIST_RANK    (exit 77 = skipped: namespaces cannot be created here)
set -euo pipefail
DIST_RANK=${1:?usage: two_hosts_test.sh DIST_RANK}
readonly PACKAGE_W=100 DRAM_W=20 STEPS=60 STEP_MS=25

skip() {
  echo "SKIP: $*" >&2
  exit 77
}
command -v ip >/dev/null || skip "iproute2's ip is not installed"
command -v unshare >/dev/null || skip "util-linux's unshare is not installed"
command -v python3 >/dev/null || skip "python3 is not installed (it checks the reports)"

# Unique names, so parallel runs do not clash (interface names: at most 15 characters).
id=$(printf '%x%04x' $$ $((RANDOM)))
NS_A=tm-a-$id NS_B=tm-b-$id VETH_A=tma$id VETH_B=tmb$id
WORK=$(mktemp -d /tmp/tm-two-hosts.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  ip link del "$VETH_A" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS_A" 2>"$WORK/netns.err" ||
  skip "cannot create network namespaces (ip netns add: $(cat "$WORK/netns.err"))"
ip netns add "$NS_B"
ip link add "$VETH_A" type veth peer name "$VETH_B" 2>"$WORK/veth.err" ||
  skip "cannot create a veth pair ($(cat "$WORK/veth.err"))"
ip link set "$VETH_A" netns "$NS_A"
ip link set "$VETH_B" netns "$NS_B"
ip -n "$NS_A" addr add 10.77.0.1/24 dev "$VETH_A"
ip -n "$NS_B" addr add 10.77.0.2/24 dev "$VETH_B"
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$VETH_A" up
ip -n "$NS_B" link set "$VETH_B" up
ip netns exec "$NS_A" unshare --uts true 2>"$WORK/uts.err" ||
  skip "cannot create UTS namespaces ($(cat "$WORK/uts.err"))"

# One fake powercap tree per host: package-0 and its DRAM zone (flat entries, as in sysfs).
for h in a b; do
  for z in "intel-rapl:0 package-0" "intel-rapl:0:1 dram"; do
    set -- $z
    mkdir -p "$WORK/powercap-$h/$1"
    echo "$2" >"$WORK/powercap-$h/$1/name"
    echo 1000000000000 >"$WORK/powercap-$h/$1/energy_uj"
    echo 9999999999999 >"$WORK/powercap-$h/$1/max_energy_range_uj"
  done
done

port=$((20000 + $$ % 20000))
start_rank() {  # RANK HOST-LETTER NS VETH LOCAL_RANK
  local rank=$1 h=$2 ns=$3 veth=$4 local_rank=$5
  ip netns exec "$ns" env RANK="$rank" WORLD_SIZE=4 LOCAL_RANK="$local_rank" LOCAL_WORLD_SIZE=2 \
    MASTER_ADDR=10.77.0.1 MASTER_PORT="$port" OMP_NUM_THREADS=1 \
    unshare --uts sh -c 'hostname "$0" && exec "$@"' "host-$h" \
    "$DIST_RANK" env out="$WORK" rapl="$WORK/powercap-$h" rapl_w=$PACKAGE_W dram_w=$DRAM_W \
    iface="$veth" steps=$STEPS step_ms=$STEP_MS timeout_ms=30000 \
    >"$WORK/rank$rank.log" 2>&1 &
  pids+=($!)
}
start_rank 0 a "$NS_A" "$VETH_A" 0
start_rank 1 a "$NS_A" "$VETH_A" 1
start_rank 2 b "$NS_B" "$VETH_B" 0
start_rank 3 b "$NS_B" "$VETH_B" 1
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
if [ "$status" != 0 ]; then
  for r in 0 1 2 3; do echo "--- rank $r" && cat "$WORK/rank$r.log"; done
  echo "FAIL: a rank exited with $status"
  exit 1
fi

python3 - "$WORK" $PACKAGE_W $DRAM_W <<'EOF'
import json, sys
work, package_w, dram_w = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ranks = [json.load(open(f"{work}/run.rank{r}.json")) for r in range(4)]
m = json.load(open(f"{work}/run.json"))
errors = []
def check(cond, what):
    if not cond: errors.append(what)
check([r["host"]["hostname"] for r in ranks] == ["host-a", "host-a", "host-b", "host-b"],
      "each rank reports its namespace's hostname")
check(m["ranks"]["hosts"] == {"host-a": [0, 1], "host-b": [2, 3]}, f"hosts {m['ranks']['hosts']}")
check(m["ranks"]["gather"]["mode"] == "allreduce", "every rank reported: steps by allreduce")
check(m["run"]["missing_ranks"] == [], "no rank missing")
check(m["run"]["master_addr"] == "10.77.0.1", "rendezvous inside the namespaces")
total = 0.0
for host, rs in (("host-a", [0, 1]), ("host-b", [2, 3])):
    # The longest window of the host's ranks: the machine counters are counted once, the largest.
    window = max(ranks[r]["run"]["duration_s"] for r in rs)
    for name, watts in (("cpu", package_w), ("dram", dram_w)):
        comps = [c for c in m["energy"]["components"] if c["host"] == host and c["name"] == name]
        check(len(comps) == 1, f"one {name} component for {host}")
        if not comps: continue
        c = comps[0]
        check(c["ranks"] == rs, f"{host} {name} ranks {c['ranks']}")
        readings = [x["machine_energy_j"] for r in rs for x in ranks[r]["energy"]["components"]
                    if x["name"] == name]
        check(len(readings) == 2 and c["machine_energy_j"] == max(readings),
              f"{host} {name}: counted once, the larger reading ({c['machine_energy_j']} of {readings})")
        expect = watts * window
        check(abs(c["machine_energy_j"] - expect) <= 0.03 * expect,
              f"{host} {name}: {c['machine_energy_j']:.3f} J vs {watts} W x {window:.3f} s = {expect:.3f} J")
    h = m["energy"]["per_host"][host]
    expect = (package_w + dram_w) * window
    check(abs(h["machine_energy_j"] - expect) <= 0.03 * expect,
          f"{host}: {h['machine_energy_j']:.3f} J vs {expect:.3f} J")
    total += expect
check(abs(m["energy"]["machine_total_j"] - total) <= 0.03 * total,
      f"machine_total_j {m['energy']['machine_total_j']:.3f} J vs {total:.3f} J")
for e in errors: print("FAIL:", e)
print(f"two hosts: machine_total_j {m['energy']['machine_total_j']:.3f} J, expected {total:.3f} J")
sys.exit(1 if errors else 0)
EOF
