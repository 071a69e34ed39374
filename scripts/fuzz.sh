#!/usr/bin/env bash
# Bounded libFuzzer runs of every harness in tests/fuzz (part of scripts/test.sh, hence of CI).
# Builds build-fuzz/ with clang (-fsanitize=fuzzer,address,undefined; Debian packages clang and
# libclang-rt-14-dev), runs each harness for TRAINMETER_FUZZ_SECONDS (default 20) starting from
# its seed corpus, and prints the executions reached. A crash fails the run; its input is copied
# to tests/fuzz/regressions/<harness>/ so that, once committed, every build replays it
# (fuzz_replay_<harness> in CTest).
# Usage: scripts/fuzz.sh [harness...]   (all when none given)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${TRAINMETER_FUZZ_SECONDS:-20}"
jobs="${TRAINMETER_JOBS:-2}"
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(report_json stream_recover config intensity_csv powercap nvml)

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found; install the Debian packages clang and libclang-rt-14-dev" >&2
  exit 1
fi
start=$SECONDS
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTRAINMETER_FUZZ=ON \
  -DTRAINMETER_SANITIZE=address,undefined -DTRAINMETER_WITH_TORCH=OFF \
  -DTRAINMETER_BUILD_EXAMPLES=OFF -DTRAINMETER_BUILD_BENCH=OFF -DTRAINMETER_BUILD_CLI=ON \
  "-DTRAINMETER_MODULES=memory;energy;carbon;report;export" >/dev/null
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}"
printf 'fuzz: build took %d s\n' $((SECONDS - start))

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=()
summary=()
for h in "${harnesses[@]}"; do
  work=build-fuzz/corpus/$h
  artifacts=build-fuzz/artifacts/$h
  rm -rf "$artifacts"  # only this run's findings are kept below
  mkdir -p "$work" "$artifacts"
  log=build-fuzz/fuzz_$h.log
  # The work corpus grows across runs; the seeds (and kept regressions) are merged in each time.
  seeds=(tests/fuzz/corpus/$h)
  [ -d tests/fuzz/regressions/$h ] && seeds+=(tests/fuzz/regressions/$h)
  set +e
  build-fuzz/fuzz/fuzz_$h -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" \
    >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  corpus=$(find "$work" -type f | wc -l)
  summary+=("$(printf '%-16s %4d s  %10s executions  coverage %5s  corpus %5d  rc %d' "$h" "$seconds" "$execs" "$cov" "$corpus" "$rc")")
  if [ "$rc" -ne 0 ]; then
    failed+=("$h")
    mkdir -p tests/fuzz/regressions/$h
    for crash in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
      [ -e "$crash" ] || continue
      cp "$crash" tests/fuzz/regressions/$h/
      echo "fuzz: $h: kept $(basename "$crash") in tests/fuzz/regressions/$h/"
    done
    tail -40 "$log"
  fi
done
printf '%s\n' "${summary[@]}"
printf 'fuzz: total %d s\n' $((SECONDS - start))
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
