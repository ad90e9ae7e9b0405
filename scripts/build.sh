#!/usr/bin/env bash
# Configures and builds Lockstep (Release). Extra arguments go to cmake.
#   scripts/build.sh [--libtorch debian|wheel] [CMAKE_ARGS...]
# debian (the default): Debian's LibTorch 1.13 into build/; wheel: the PyPI wheel's LibTorch
# 2.x from .venv into build-torch2/ (scripts/libtorch.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
libtorch=debian
if [ "${1:-}" = "--libtorch" ]; then libtorch="${2:?--libtorch needs debian or wheel}"; shift 2; fi
source scripts/libtorch.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$build_dir/CMakeCache.txt" ] ||
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${cmake_prefix[@]}" "$@"
cmake --build "$build_dir" --parallel "$(nproc)"
