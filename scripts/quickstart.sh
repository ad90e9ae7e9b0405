#!/usr/bin/env bash
# Quick start: install what is missing, build, run the built-in default training run, then
# prove that resuming it is bit-exact (interrupted mid-epoch and at the epoch boundary), and
# audit the run directory it left.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
rm -rf lockstep_output lockstep_verify
./build/cli/lockstep train --output_dir lockstep_output
./build/cli/lockstep verify-resume --output_dir lockstep_verify
./build/cli/lockstep inspect lockstep_output
