#!/usr/bin/env bash
# Sanitizer builds and runs (part of scripts/test.sh, hence of CI). Each stage builds only what
# it needs, in its own folder, without libtorch:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer: the torch-free library, the CLI and every
#         test executable that does not link libtorch (core, memory, energy, carbon, export,
#         reliability, the offline merge, fuzz corpus replay, and the entries that drop root to
#         check permission errors), run through CTest. The torch tests are not sanitized: an
#         ASan libtorch integration build would add minutes per torch translation unit to a CI
#         run that already builds libtorch twice (docs/reliability.md).
#   tsan  ThreadSanitizer: the threaded core only: session, rings, collector, sampler and stream
#         writer tests (Catch2 tags below).
# Every test run uses a random order seeded per run (--order rand --rng-seed time); the seed is
# printed first ("replay with --order rand --rng-seed N").
# Usage: scripts/sanitize.sh [asan] [tsan]   (both when none given). Stage times are printed.
set -euo pipefail
cd "$(dirname "$0")/.."

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(asan tsan)
jobs="${TRAINMETER_JOBS:-2}"
common=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DTRAINMETER_WITH_TORCH=OFF
        -DTRAINMETER_BUILD_EXAMPLES=OFF -DTRAINMETER_BUILD_BENCH=OFF -DTRAINMETER_BUILD_TESTS=ON
        -DTRAINMETER_BUILD_CLI=ON "-DTRAINMETER_MODULES=memory;energy;carbon;report;export")

# Sanitizer runtime settings: fail on the first report, with stacks.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
# TSan maps fixed shadow ranges; kernels with high mmap entropy (vm.mmap_rnd_bits > 28) break it
# unless address randomisation is turned off for the process.
no_aslr=()
if command -v setarch >/dev/null && [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ]; then
  no_aslr=(setarch "$(uname -m)" -R)
fi

stage_time() { printf 'sanitize: %s took %d s\n' "$1" "$2"; }

for stage in "${stages[@]}"; do
  start=$SECONDS
  case "$stage" in
    asan)
      cmake -S . -B build-asan "${common[@]}" -DTRAINMETER_SANITIZE=address,undefined >/dev/null
      cmake --build build-asan -j"$jobs" --target trainmeter_cli test_core memory_test energy_tests \
        fake_nvml_full fake_nvml_omit_energy fake_nvml_omit_handle fake_amdsmi_full \
        fake_amdsmi_omit_energy fake_amdsmi_omit_handles carbon_test export_test \
        stream_victim reliability_tests signal_child fuzz_replay merge_test
      built=$SECONDS
      (cd build-asan && ctest --output-on-failure --timeout 900 -j"$jobs" \
        -R '^(test_core|memory_test|energy_tests|carbon_test|export_test|reliability_tests|merge_test|memory_test_unprivileged|energy_tests_unprivileged|memory_test_tools|export_test_tools|fuzz_replay_.*)$')
      stage_time "asan+ubsan build" $((built - start))
      stage_time "asan+ubsan tests" $((SECONDS - built))
      ;;
    tsan)
      cmake -S . -B build-tsan "${common[@]}" -DTRAINMETER_SANITIZE=thread >/dev/null
      cmake --build build-tsan -j"$jobs" --target trainmeter_cli test_core reliability_tests \
        signal_child export_test stream_victim energy_tests fake_nvml_full
      built=$SECONDS
      bin=build-tsan/tests/bin
      export TRAINMETER_CLI="$PWD/build-tsan/bin/trainmeter"
      rand=(--order rand --rng-seed time)
      "${no_aslr[@]}" "$bin/test_core" "${rand[@]}" '[session]'
      "${no_aslr[@]}" "$bin/reliability_tests" "${rand[@]}" '[threads],[steps],[signals]'
      "${no_aslr[@]}" "$bin/export_test" "${rand[@]}" '[stream]'
      "${no_aslr[@]}" "$bin/energy_tests" "${rand[@]}" '[session]'
      stage_time "tsan build" $((built - start))
      stage_time "tsan tests" $((SECONDS - built))
      ;;
    *)
      echo "sanitize: unknown stage '$stage' (accepted: asan, tsan)" >&2
      exit 2
      ;;
  esac
done
