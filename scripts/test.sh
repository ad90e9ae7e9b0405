#!/usr/bin/env bash
# The test command: install what is missing, build, and run every GoogleTest suite via ctest.
#   scripts/test.sh [--libtorch debian|wheel]     (scripts/libtorch.sh; CI runs both)
set -euo pipefail
cd "$(dirname "$0")/.."
libtorch=debian
if [ "${1:-}" = "--libtorch" ]; then libtorch="${2:?--libtorch needs debian or wheel}"; shift 2; fi
scripts/install-deps.sh
source scripts/libtorch.sh
scripts/build.sh --libtorch "$libtorch"
export HF_HUB_OFFLINE=1  # the tests fetch nothing: tiny models are built from configs
# What the tests run on, printed first: a result is only as good as its versions.
grep -E '^(Torch_DIR|TORCH_LIBRARY):' "$build_dir/CMakeCache.txt"
if [ -x .venv/bin/python ]; then
  .venv/bin/python -c 'import sys, importlib.metadata as m
print("python", sys.version.split()[0], *("%s %s" % (p, m.version(p)) for p in ("torch", "transformers", "accelerate", "lockstep")))'
fi
# The real-output matrices judge torch-free code, so they run against one LibTorch only
# (tests/CMakeLists.txt says why).
exclude=()
[ "$libtorch" = wheel ] && exclude=(--label-exclude real_outputs)
cd "$build_dir"
ctest --output-on-failure --parallel "$(nproc)" "${exclude[@]}"
