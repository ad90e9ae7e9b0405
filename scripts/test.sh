#!/usr/bin/env bash
# The test command: install what is missing, build, and run every GoogleTest suite via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --parallel "$(nproc)"
