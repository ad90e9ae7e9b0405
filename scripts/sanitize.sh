#!/usr/bin/env bash
# Builds Lockstep with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ and
# runs the whole test suite there. Any report fails the run (UBSan does not recover).
#   scripts/sanitize.sh [ctest arguments, e.g. -R FaultWalk]
# LeakSanitizer is off: LibTorch and libhdf5 keep process-lifetime allocations it would
# report at exit; the fuzzers (scripts/fuzz.sh) check the readers for leaks per input.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f build-asan/CMakeCache.txt ] || cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLOCKSTEP_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-asan --parallel "$(nproc)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-asan
ctest --output-on-failure --parallel "$(nproc)" "$@"
