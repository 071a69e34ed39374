#!/usr/bin/env bash
# The libtorch 2.x + CUDA build of the test suite (part of scripts/test.sh, hence of CI).
#
# Installs PyPI's torch wheel (it carries a full libtorch with CUDA: headers, shared libraries and
# share/cmake/Torch) into a virtual environment kept between runs on the same machine, configures
# trainmeter against it with CUDA on (nvcc and the CUDA toolkit from /usr/local/cuda), builds
# everything (library, trainmeter::torch with op accounting, the c10d gather, the CUDA event
# timing, tests, examples; the benchmarks are built by the Debian build) at -O2 without debug
# information (compile time: CI's 45-minute budget) with warnings as errors, and runs the whole CPU test suite through CTest. There is no GPU here: tests that need one are tagged hidden ([.gpu]) and run in
# scripts/gpu-check.sh.
#
#   scripts/torch2.sh [env|build|test|all]   (default all; `env` prints the torch CMake prefix)
#
# The one place where the tested libtorch 2.x version is pinned:
TORCH2_VERSION="${TRAINMETER_TORCH2_VERSION:-2.15.0}"
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${TRAINMETER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainmeter}"
venv="$cache/venv-torch-$TORCH2_VERSION"
build="${TRAINMETER_TORCH2_BUILD:-build-torch2}"
cuda="${CUDA_HOME:-/usr/local/cuda}"
jobs="${TRAINMETER_JOBS:-2}"
what="${1:-all}"

stage_time() { printf 'torch2: %s took %d s\n' "$1" "$2"; }

ensure_env() {
  local start=$SECONDS
  if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH2_VERSION')" 2>/dev/null; then
    echo "torch2: installing torch==$TORCH2_VERSION into $venv"
    mkdir -p "$cache"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$TORCH2_VERSION"
  fi
  torch_root="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)"
  # The wheel's CUDA libraries (cudart 13.2, NCCL, cuDNN... under site-packages/nvidia/*/lib). They
  # must win over the toolkit's older copies in /usr/local/cuda/lib, which torch's CMake puts on
  # the link line: at link time (-rpath-link: libtorch_cuda.so needs the wheel's newer NCCL) and
  # at run time (-rpath, searched before the toolkit's entry).
  nvidia_libs="$(ls -d "$(dirname "$torch_root")"/nvidia/*/lib 2>/dev/null | paste -sd: -)"
  stage_time "environment (torch $TORCH2_VERSION)" $((SECONDS - start))
}

configure_and_build() {
  local start=$SECONDS
  [ -x "$cuda/bin/nvcc" ] || { echo "torch2: no CUDA toolkit at $cuda (set CUDA_HOME)" >&2; exit 2; }
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # The wheel's root first: its lib/ must win over Debian's libtorch in /usr/lib.
  PATH="$cuda/bin:$PATH" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" \
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DTRAINMETER_BUILD_BENCH=OFF \
      "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$nvidia_libs -Wl,-rpath,$nvidia_libs" \
      "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,$nvidia_libs -Wl,-rpath,$nvidia_libs" \
      -DCMAKE_PREFIX_PATH="$torch_root;$torch_root/share/cmake" \
      -DCUDAToolkit_ROOT="$cuda" -DCMAKE_CUDA_COMPILER="$cuda/bin/nvcc" \
      -DTRAINMETER_WARNINGS_AS_ERRORS=ON "${launcher[@]}" >"$build.configure.log" 2>&1 \
    || { tail -40 "$build.configure.log"; exit 1; }
  grep -E 'trainmeter: libtorch' "$build.configure.log"
  grep -q 'CUDA: ON' "$build.configure.log" || { echo "torch2: libtorch's CUDA was not found" >&2; exit 1; }
  PATH="$cuda/bin:$PATH" cmake --build "$build" -j"$jobs"
  stage_time "build against libtorch $TORCH2_VERSION + CUDA" $((SECONDS - start))
}

run_tests() {
  local start=$SECONDS
  (cd "$build" && ctest --output-on-failure -j"$jobs")
  stage_time "tests against libtorch $TORCH2_VERSION" $((SECONDS - start))
}

case "$what" in
  env) ensure_env; echo "$torch_root/share/cmake" ;;
  build) ensure_env; configure_and_build ;;
  test) run_tests ;;
  all) ensure_env; configure_and_build; run_tests ;;
  *) echo "torch2: unknown stage '$what' (accepted: env, build, test, all)" >&2; exit 2 ;;
esac
