#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan; formats/ only, no LibTorch) into
# build-fuzz/ and runs each for a bounded time on a seed corpus from the fixtures.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 30 s, every target)
#   scripts/fuzz.sh --runs N [TARGET...]    N inputs each from seed 1: bounded and seeded, for
#                                           CI (coverage-guided, so builds at other paths may
#                                           still explore slightly differently)
# Exits 1 if any target crashes; the input that did is left in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
runs=""
if [ "$seconds" = "--runs" ]; then
  runs="${1:?--runs needs a count}"
  shift
fi
# Every target, as tests/fuzz/CMakeLists.txt builds them; those with seeds in tests/fuzz/seeds.
all_targets=(safetensors zip pickle step_log manifest tensor_file module_trace)
seeded=(step_log manifest tensor_file module_trace pickle)  # pickle: inputs that once crashed it
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

scripts/install-deps.sh --sanitizers
[ -f build-fuzz/CMakeCache.txt ] || cmake -S . -B build-fuzz -G Ninja -DLOCKSTEP_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --parallel "$(nproc)"

# Seed corpora: Lockstep's own files (tests/fuzz/seeds) and the HF fixture's.
corpus=build-fuzz/corpus
rm -rf "$corpus" && mkdir -p build-fuzz/crashes
for t in "${all_targets[@]}"; do mkdir -p "$corpus/$t"; done
for t in "${seeded[@]}"; do cp tests/fuzz/seeds/$t/* "$corpus/$t/"; done
hf=$(mktemp -d)
trap 'rm -rf "$hf"' EXIT
tar xzf tests/fixtures/hf/hf_gpt2_run.tar.gz -C "$hf"
run="$hf/hf_gpt2_run/checkpoint-3"
cp "$run/model.safetensors" "$corpus/safetensors/"
for f in "$run"/*.pt "$run"/*.pth "$run"/*.bin; do cp "$f" "$corpus/zip/"; done
i=0
for f in "$corpus"/zip/*; do
  python3 - "$f" "$corpus/pickle/$((i++)).pkl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith("data.pkl"))
    open(sys.argv[2], "wb").write(z.read(name))
PY
done
cp "$run"/*.json "$corpus/manifest/"
# DCP's and DeepSpeed's pickles, written by the real libraries (tests/fixtures/real).
for layout in dcp_checkpoint deepspeed_zero3_run; do tar xzf tests/fixtures/real/$layout.tar.gz -C "$hf"; done
cp "$hf/dcp_checkpoint/.metadata" "$corpus/pickle/dcp_metadata.pkl"
for f in "$hf"/deepspeed_zero3_run/checkpoint-4/global_step4/*.pt; do cp "$f" "$corpus/zip/"; done

status=0
for t in "${targets[@]}"; do
  log="build-fuzz/$t.log"
  # libhdf5 runs in a forked child there, whose allocations LeakSanitizer cannot follow.
  leaks=1
  [ "$t" = tensor_file ] && leaks=0
  # Forking a reader per input makes tensor_file 100x slower: a tenth of the runs.
  bound="-max_total_time=$seconds"
  [ -n "$runs" ] && bound="-runs=$([ "$t" = tensor_file ] && echo $((runs / 10)) || echo "$runs")"
  if build-fuzz/tests/fuzz/${t}_fuzz "$corpus/$t" "$bound" -seed=1 -timeout=10 -detect_leaks=$leaks \
       -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" \
       >"$log" 2>&1; then
    result="ok"
  else
    result="CRASH (see $log and build-fuzz/crashes/)"
    status=1
  fi
  execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  note=$(grep -o 'libhdf5 died in the isolated reader on [0-9]* inputs' "$log" | tail -1 || true)
  printf 'fuzz %-12s %10s execs (%s), %s, corpus %s files: %s%s\n' "$t" "${execs:-?}" "${bound#-}" "${cov:-cov: ?}" \
    "$(ls "$corpus/$t" | wc -l)" "$result" "${note:+ ($note)}"
done
exit $status
