#!/usr/bin/env bash
# bench/peers/run.sh: trainmeter side by side with CodeCarbon, Zeus, carbontracker, eco2ai and
# PyTorch's profiler on the same work (docs/peers.md). Not part of the test suite.
#
#   bench/peers/run.sh [--only 1,2,3,4] [--rounds N] [--estimate-seconds S] [--no-docs]
#
# 1. A virtual environment with bench/peers/requirements.txt (the one place versions are
#    pinned) at $PEERS_VENV (default ~/.cache/trainmeter/venv-peers), reused while
#    requirements.txt is unchanged. pip honours PIP_FIND_LINKS (e.g. a folder with the torch
#    wheel) and PIP_INDEX_URL as usual.
# 2. trainmeter (library, trainmeter::torch, CLI) from $PEERS_SRC (default: this
#    checkout), built in $BUILD/tm and installed into $BUILD/prefix; then
#    bench/peers/cpp (peers_cpp) against that install with find_package(trainmeter).
#    libtorch: Debian's (/usr, 1.13) unless PEERS_TORCH_PREFIX names another
#    (e.g. the wheel's: python -c 'import torch; print(torch.utils.cmake_prefix_path)').
# 3. py/drive.py runs the measurements into $BUILD/results; py/report.py turns them into the
#    generated section of docs/peers.md (unless --no-docs) and $BUILD/results/peers.md.
# BUILD is $PEERS_BUILD (default <repo>/build-peers). The variables are not TRAINMETER_*: trainmeter
# rejects unknown TRAINMETER_* variables at construction.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${PEERS_VENV:-$HOME/.cache/trainmeter/venv-peers}
BUILD=${PEERS_BUILD:-$REPO/build-peers}
SRC=${PEERS_SRC:-$REPO}
TORCH_PREFIX=${PEERS_TORCH_PREFIX:-}
JOBS=${PEERS_JOBS:-2}
DOCS=1
DRIVE_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-docs) DOCS=0 ;;
    --only|--rounds|--estimate-seconds) DRIVE_ARGS+=("$1" "$2"); shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# 1. The peers' environment.
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet -r "$HERE/requirements.txt"
  echo "$WANT" > "$STAMP"
fi

# 2. trainmeter and the C++ program.
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
PREFIX_PATH="$BUILD/prefix${TORCH_PREFIX:+;$TORCH_PREFIX}"
cmake -S "$SRC" -B "$BUILD/tm" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTRAINMETER_WITH_TORCH=ON -DTRAINMETER_BUILD_TESTS=OFF -DTRAINMETER_BUILD_EXAMPLES=OFF \
  -DTRAINMETER_BUILD_BENCH=OFF -DTRAINMETER_BUILD_CLI=ON ${TORCH_PREFIX:+-DCMAKE_PREFIX_PATH="$TORCH_PREFIX"} \
  "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD/tm" -j"$JOBS" --target trainmeter trainmeter_torch trainmeter_cli
cmake --install "$BUILD/tm" --prefix "$BUILD/prefix" >/dev/null
cmake -S "$HERE/cpp" -B "$BUILD/cpp" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$PREFIX_PATH" "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD/cpp" -j"$JOBS"

# 3. Measure, then write the tables.
mkdir -p "$BUILD/results"
SRC_COMMIT=unknown SRC_DIRTY=false
if [ -e "$SRC/.git" ]; then  # not a parent's repository when SRC is an exported tree
  SRC_COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ "$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null | wc -l)" -gt 0 ] && SRC_DIRTY=true
fi
printf '{"trainmeter_src": "%s", "trainmeter_commit": "%s", "uncommitted_changes": %s, "libtorch_prefix": "%s"}\n' \
  "$SRC" "$SRC_COMMIT" "$SRC_DIRTY" "${TORCH_PREFIX:-/usr (Debian)}" > "$BUILD/results/build.json"
"$VENV/bin/python" "$HERE/py/drive.py" --results "$BUILD/results" \
  --peers-cpp "$BUILD/cpp/peers_cpp" --cli "$BUILD/prefix/bin/trainmeter" "${DRIVE_ARGS[@]}"
REPORT_ARGS=(--results "$BUILD/results" --out "$BUILD/results/peers.md")
if [ "$DOCS" = 1 ]; then REPORT_ARGS+=(--docs "$REPO/docs/peers.md"); fi
"$VENV/bin/python" "$HERE/py/report.py" "${REPORT_ARGS[@]}"
