#!/usr/bin/env bash
# Installs the Debian packages Lockstep builds against, skipping those already present.
# Each one earns its place:
#   libtorch-dev        the reference trainer (CPU LibTorch 1.13)
#   libgloo-dev         the headers of the Gloo library LibTorch's c10d already links
#                       (ProcessGroupGloo: data-parallel training on CPU)
#   libhdf5-dev         checkpoint tensors          libzstd-dev      the step log
#   nlohmann-json3-dev  JSON state and records      libxxhash-dev    fast checksums (XXH3)
#   libcli11-dev        the CLI                     libgtest-dev, libbenchmark-dev  tests, bench
#   zlib1g-dev          inflate of zip archives' deflated entries
#   libdeflate-dev      CRC-32 of zip archives' entries (torch.save files): 10x zlib's, with PCLMUL
#   cmake, ninja-build, g++, pkg-config           build
#   clang-format-14     the C++ style check (scripts/format.sh, run by ctest)
#   zstd, jq            the quick start's `zstdcat steps.jsonl.zst | jq`
#   hdf5-tools          h5diff, the peer bench/diff_bench measures `lockstep diff` against
#   valgrind            callgrind: bench/instr_bench counts instructions, a measure CI can repeat
#   libopenblas0-pthread  an optimized BLAS: it takes over libblas.so.3, which LibTorch calls for
#                       every matmul (Debian's reference BLAS is ~18x slower on the gpt model)
#   chromium, fonts-dejavu-core, libpng-dev
#                       the report tests render `lockstep report`'s pages in headless Chromium
#                       (one font, so the rendering compared with its expectation is stable) and
#                       read the screenshots back with libpng
#   python3-torch, python3-zstandard, python3-xxhash, python3-numpy
#                       Debian's PyTorch on the same LibTorch 1.13: the peer `lockstep bench`
#                       measures this build against
# Then scripts/python-env.sh makes the project's Python environment, .venv/ (PyTorch 2.x, the
# Hugging Face Trainer, the lockstep package): what the Python tests and the docs use.
# With --sanitizers, also what scripts/sanitize.sh and scripts/fuzz.sh need:
#   clang, libclang-rt-14-dev   ASan, UBSan and libFuzzer
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config clang-format-14 zstd jq hdf5-tools valgrind libopenblas0-pthread libtorch-dev libgloo-dev libhdf5-dev nlohmann-json3-dev
          zlib1g-dev libdeflate-dev libcli11-dev libzstd-dev libxxhash-dev libgtest-dev libbenchmark-dev chromium fonts-dejavu-core libpng-dev
          python3-torch python3-zstandard python3-xxhash python3-numpy)
for option in "$@"; do
  case "$option" in
    --sanitizers) packages+=(clang libclang-rt-14-dev) ;;
    --bench) ;;  # kept for scripts that pass it: the peer's python3-torch is installed always
    *) echo "install-deps: unknown option $option (--sanitizers, --bench)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
"$(dirname "$0")/python-env.sh"
