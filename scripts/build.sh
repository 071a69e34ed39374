#!/usr/bin/env bash
# Configures and builds trainmeter into build/ (Release with debug info). Extra arguments go to
# the build step, e.g. `scripts/build.sh --target train_mlp`.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build "$@"
