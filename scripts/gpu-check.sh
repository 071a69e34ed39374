#!/usr/bin/env bash
# GPU check, run on a machine with an NVIDIA GPU, CUDA and a CUDA PyTorch wheel (its libtorch):
# builds trainmeter against the wheel's libtorch, runs the GPU tests, train_mlp on the GPU with
# NVML energy next to nvidia-smi's power readings, the Python cross-check of the CUDA allocator
# peak, and prints a short table. Results go to $OUT (default /tmp/trainmeter-gpu-check).
#
#   bash scripts/gpu-check.sh [HEADERS_DIR]
# HEADERS_DIR: a folder with fmt/, nlohmann/, catch2/ headers when the machine has no packages
# for them (Debian's /usr/include copies work).
# Fails (non-zero exit) when a build, a GPU test or a check fails: test output goes to a log
# whose tail is shown, and the test's own exit code decides.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/trainmeter-gpu-check}
mkdir -p "$OUT"
HEADERS=${1:-}
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
log "torch $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)')"
nvidia-smi --query-gpu=name,uuid,power.limit,driver_version,memory.total --format=csv | tee -a "$OUT/summary.txt"

start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  ${HEADERS:+-DTRAINMETER_EXTRA_INCLUDE="$HEADERS"} -DTRAINMETER_BUILD_BENCH=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 >"$OUT/configure.log" 2>&1 || { log "configure failed"; tail -30 "$OUT/configure.log"; exit 1; }
grep -E 'trainmeter: libtorch' "$OUT/configure.log" | tee -a "$OUT/summary.txt" || true
targets="train_mlp torch_test"
if ! cmake --build build-gpu -j "$(nproc)" --target $targets >"$OUT/build.log" 2>&1; then
  log "full build failed; errors:"
  grep -E 'error' "$OUT/build.log" | head -20 | tee -a "$OUT/summary.txt" || true
  log "retrying without op accounting and the c10d gather"
  cmake -S . -B build-gpu -DTRAINMETER_TORCH_OPS=OFF -DTRAINMETER_TORCH_DISTRIBUTED=OFF >>"$OUT/configure.log" 2>&1
  cmake --build build-gpu -j "$(nproc)" --target $targets >"$OUT/build2.log" 2>&1 \
    || { log "build failed"; grep -E 'error' "$OUT/build2.log" | head -40; exit 1; }
fi
cmake --build build-gpu -j "$(nproc)" --target test_gpu >"$OUT/build-test-gpu.log" 2>&1 \
  || { log "test_gpu failed to build:"; grep -E 'error' "$OUT/build-test-gpu.log" | head -20 | tee -a "$OUT/summary.txt"; exit 1; }
log "built in $(( $(date +%s) - start )) s"

log "GPU tests and the torch memory tests on this libtorch"
failed=0
# run_test NAME LINES CMD...: runs CMD with its output in $OUT/NAME.log, shows the last LINES
# lines, and records a failure (the script exits non-zero at the end) without hiding the code.
run_test() {
  local name=$1 lines=$2 rc=0
  shift 2
  "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  grep -vE '^$' "$OUT/$name.log" | tail -"$lines" | tee -a "$OUT/summary.txt" || true
  if [ "$rc" -ne 0 ]; then
    log "$name FAILED (exit $rc; full output in $OUT/$name.log)"
    failed=1
  fi
}
run_test torch_test 5 build-gpu/tests/bin/torch_test --reporter compact
run_test test_gpu 40 build-gpu/tests/bin/test_gpu --success --reporter compact

log "train_mlp --device cuda with NVML energy; nvidia-smi power sampled alongside"
nvidia-smi --query-gpu=timestamp,power.draw --format=csv,noheader,nounits -lms 100 >"$OUT/smi-power.csv" &
smi=$!
rc=0
TRAINMETER_SAMPLE_INTERVAL_MS=50 build-gpu/bin/train_mlp --device cuda --steps 1000 --batch 4096 --hidden 4096 \
  --eval-every 250 --out "$OUT/train_mlp_cuda.json" 2>&1 | tee -a "$OUT/summary.txt" || rc=$?
kill $smi 2>/dev/null || true
if [ "$rc" -ne 0 ]; then log "train_mlp FAILED (exit $rc)"; failed=1; fi
python3 - "$OUT" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
out = sys.argv[1]
r = json.load(open(f"{out}/train_mlp_cuda.json"))
rows = [l.split(",") for l in open(f"{out}/smi-power.csv") if l.strip()]
watts = [float(x[1]) for x in rows if x[1].strip().replace('.', '', 1).isdigit()]
busy = sorted(watts)[len(watts)//4:] or watts
for c in (r.get("energy") or {}).get("components", []):
    print(f"component {c['name']:6} source {c['source']:28} provenance {c['provenance']:10} "
          f"machine {c.get('machine_energy_j')} J attributed {c.get('energy_j')} J avg {c.get('average_power_w')} W")
print(f"nvidia-smi power.draw over the run: {len(watts)} samples, mean {sum(watts)/max(len(watts),1):.1f} W, "
      f"mean of upper 3/4 {sum(busy)/max(len(busy),1):.1f} W, max {max(watts or [0]):.1f} W")
print("run duration_s", r["run"]["duration_s"], "train p50 ns", r["phases"]["train"]["step_time_ns"]["p50"])
print("memory.cuda", json.dumps((r.get("memory") or {}).get("cuda")))
print("host.gpus", json.dumps(r["host"]["gpus"]))
PY

log "GPU step time: CUDA events (async) against a synchronised run of the same steps"
# Run A: the default, loss read back only at the end, so a step returns after launching its
# kernels (host wall_ns = launch time) and gpu_ns comes from the events. Run B: the device
# synchronised at each step's start and end, so wall_ns is the step's device time.
rc=0
build-gpu/bin/train_mlp --device cuda --steps 300 --batch 256 --hidden 4096 --eval-every 0 \
  --loss-every 0 --out "$OUT/gpu_events.json" >"$OUT/gpu_events.log" 2>&1 || rc=$?
build-gpu/bin/train_mlp --device cuda --steps 300 --batch 256 --hidden 4096 --eval-every 0 \
  --loss-every 0 --sync-steps --out "$OUT/gpu_sync.json" >"$OUT/gpu_sync.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then log "train_mlp (GPU timing runs) FAILED (exit $rc)"; failed=1; fi
python3 - "$OUT" <<'PY' | tee -a "$OUT/summary.txt" || failed=1
import json, statistics, sys
out = sys.argv[1]
a = json.load(open(f"{out}/gpu_events.json")); b = json.load(open(f"{out}/gpu_sync.json"))
sa = [s for s in a["steps"] if not s["warmup"]][20:]; sb = [s for s in b["steps"] if not s["warmup"]][20:]
gpu = [s["gpu_ns"] for s in sa if s["gpu_ns"] is not None]
host_async = [s["wall_ns"] for s in sa]; host_sync = [s["wall_ns"] for s in sb]
print("run.gpu_timing", json.dumps(a["run"]["gpu_timing"]))
if not gpu:
    print("FAIL: no step has gpu_ns"); sys.exit(1)
pg, ps, pa = statistics.median(gpu), statistics.median(host_sync), statistics.median(host_async)
pairs = [g / w - 1 for g, w in zip(gpu, host_sync)]
print(f"median gpu_ns (events) {pg:.0f}; median wall_ns synchronised {ps:.0f}; difference {100*(pg/ps-1):+.2f} %")
print(f"per-step |gpu_ns/sync wall - 1|: median {100*statistics.median(abs(x) for x in pairs):.2f} %, "
      f"p90 {100*sorted(abs(x) for x in pairs)[int(0.9*len(pairs))]:.2f} %")
print(f"host wall_ns without sync (launch time): median {pa:.0f} = {100*pa/pg:.1f} % of the device time")
print("phase gpu_time_ns", json.dumps(a["phases"]["train"]["gpu_time_ns"]))
print("phase gpu_busy_fraction", a["phases"]["train"]["gpu_busy_fraction"])
cuda_peaks = [s["peak_cuda_tensor_bytes"] for s in sa if s.get("peak_cuda_tensor_bytes")]
print("per-step CUDA tensor peaks present on", len(cuda_peaks), "of", len(sa), "steps; last", cuda_peaks[-1] if cuda_peaks else None)
ok = abs(pg / ps - 1) <= 0.05
print("within 5 %:", "yes" if ok else "NO")
sys.exit(0 if ok else 1)
PY

log "Python cross-check: torch.cuda.max_memory_allocated() for the same model, batch and steps"
python3 - "$OUT" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys, torch
out = sys.argv[1]
torch.manual_seed(0)
F, H, B = 64, 4096, 4096
class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(F, H), torch.nn.Linear(H, H), torch.nn.Linear(H, 1)
    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
m = Mlp()
w = torch.randn(F, 1)
pool = []
for _ in range(16):
    x = torch.randn(B, F); y = torch.sin(x @ w) + 0.01 * torch.randn(B, 1); pool.append((x.cuda(), y.cuda()))
ex = torch.randn(B, F); ey = torch.sin(ex @ w) + 0.01 * torch.randn(B, 1); ev = (ex.cuda(), ey.cuda())
m.cuda()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
for s in range(1000):
    x, y = pool[s % 16]
    opt.zero_grad(); loss = torch.nn.functional.mse_loss(m(x), y); loss.backward(); opt.step(); loss.item()
    if (s + 1) % 250 == 0:
        with torch.no_grad(): torch.nn.functional.mse_loss(m(ev[0]), ev[1]).item()
r = json.load(open(f"{out}/train_mlp_cuda.json"))
ours = r["memory"]["cuda"]["cuda:0"]["allocated_peak_bytes"]
print(f"python max_memory_allocated {torch.cuda.max_memory_allocated()} B; trainmeter allocated_peak_bytes {ours} B; "
      f"difference {ours - torch.cuda.max_memory_allocated()} B")
PY
log "done in $(( $(date +%s) - start )) s"
if [ "$failed" -ne 0 ]; then
  log "FAILED: see the messages above"
  exit 1
fi
