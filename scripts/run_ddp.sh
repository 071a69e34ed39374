#!/bin/sh
# Starts N ranks of a c10d program on this host with torchrun's variables, waits for all, and
# fails if any rank failed. A template for launching your own trainmeter-instrumented program.
#
#   scripts/run_ddp.sh N PROGRAM [ARGS...]
#   scripts/run_ddp.sh 2 build/bin/train_ddp --steps 300
#
# MASTER_ADDR (default 127.0.0.1) and MASTER_PORT (default 29500) are taken from the environment.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 N PROGRAM [ARGS...]" >&2
  exit 2
fi
n=$1
shift
case $n in ''|*[!0-9]*) echo "$0: N must be a positive integer, got '$n'" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] || { echo "$0: N must be at least 1" >&2; exit 2; }
export MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}" MASTER_PORT="${MASTER_PORT:-29500}"
export WORLD_SIZE="$n" LOCAL_WORLD_SIZE="$n"
pids=""
r=0
while [ "$r" -lt "$n" ]; do
  RANK=$r LOCAL_RANK=$r "$@" &
  pids="$pids $!"
  r=$((r + 1))
done
status=0
for pid in $pids; do
  wait "$pid" || status=1
done
exit $status
