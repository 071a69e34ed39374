#!/usr/bin/env bash
# The main job: set up, build, and train the example MLP, writing runs/train_mlp.json and
# printing its summary. Arguments go to train_mlp (see build/bin/train_mlp --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target train_mlp trainmeter_cli
build/bin/train_mlp --out runs/train_mlp.json "$@"
build/bin/trainmeter validate runs/train_mlp.json
