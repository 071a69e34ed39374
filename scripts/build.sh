#!/usr/bin/env bash
# Configures and builds trainmeter into build/ (-O2, with line-level debug information: -g1 keeps
# backtraces and profiles readable and compiles a libtorch translation unit a third faster than
# -g, which is minutes of CI on two cores; docs/performance.md). Extra arguments go to the build
# step, e.g. `scripts/build.sh --target train_mlp`.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" >/dev/null
cmake --build build "$@"
