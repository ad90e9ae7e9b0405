#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the built-in default training run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
rm -rf lockstep_output
./build/cli/lockstep train --output_dir lockstep_output
