#!/usr/bin/env bash
# The test command: install what is missing, build, and run every GoogleTest suite via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export HF_HUB_OFFLINE=1  # the tests fetch nothing: tiny models are built from configs
# What the Python tests run on, printed first: a result is only as good as its versions.
if [ -x .venv/bin/python ]; then
  .venv/bin/python -c 'import sys, importlib.metadata as m
print("python", sys.version.split()[0], *("%s %s" % (p, m.version(p)) for p in ("torch", "transformers", "accelerate", "lockstep")))'
fi
cd build
ctest --output-on-failure --parallel "$(nproc)"
