#!/usr/bin/env python3
"""Calibrates the bench gate on this machine, from real A/A measurements.

Runs each suite's binary against itself, interleaved as `lockstep bench ab` does (A B A B,
--rounds pairs), --pairs times, and judges every pair with `lockstep bench compare`:

  * false alarms: A/A pairs the gate calls a regression. "one stage" is `bench compare`;
    "with rerun" needs the same benchmark flagged in a pair and in the next one, as
    `bench ab`'s sequential rerun requires (the rerun is the next pair's fresh rounds).
  * power: each A/A pair's candidate times scaled by 1 + s (a planted slowdown on real
    noise), for s in --slowdowns; the share of pairs in which the gate catches it, and the
    smallest s caught in at least 95% of pairs.
  * instructions: with instr_bench among the suites, the spread of its counts over the
    pairs (the gate's instruction threshold must sit well above it).

Usage: bench/calibrate.py --bench-dir build/bench --lockstep build/cli/lockstep
           [--pairs 20] [--rounds 5] [--threshold 0.10] [--out calibration.json]
Standard library only. Prints a table; --out writes every figure as JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

# The suites and filters of `lockstep bench --quick` that are cheap enough to pair many
# times (train_bench, which starts the Python peer, is left to `bench ab` itself).
SUITES = {
    "checkpoint_bench": "layers:2/",
    "resume_latency_bench": "BM_Resume",
    "inspect_bench": "BM_TensorStats|BM_TensorHash|BM_TrainHelp|BM_LockstepStart",
    "instr_bench": ".",
}


def run_suite(binary, flt, out):
    subprocess.run([binary, f"--benchmark_out={out}", "--benchmark_out_format=json",
                    f"--benchmark_filter={flt}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return [b for b in json.load(f)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]


def one_pair(bench_dir, suites, rounds, tmp):
    """Interleaved A/A rounds of every suite: (base entries, candidate entries)."""
    base, cand = [], []
    for suite in suites:
        binary = os.path.join(bench_dir, suite)
        for r in range(1 if suite == "instr_bench" else rounds):  # a count repeats: once is enough
            base += run_suite(binary, SUITES[suite], os.path.join(tmp, "a.json"))
            cand += run_suite(binary, SUITES[suite], os.path.join(tmp, "b.json"))
    return base, cand


def gate(lockstep, base, cand, threshold, tmp):
    paths = []
    for name, entries in (("base", base), ("cand", cand)):
        path = os.path.join(tmp, name + ".json")
        with open(path, "w") as f:
            json.dump({"benchmarks": entries}, f)
        paths.append(path)
    p = subprocess.run([lockstep, "bench", "compare", *paths, "--json", "--threshold", str(threshold)],
                       capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"calibrate: bench compare failed ({p.returncode}): {p.stdout}{p.stderr}")
    report = json.loads(p.stdout)
    return {b["name"]: b for b in report["benchmarks"]}


def slowed(entries, s):
    out = []
    for e in entries:
        e = dict(e)
        e["real_time"] = e["real_time"] * (1 + s)
        if "instructions" in e:
            e["instructions"] = e["instructions"] * (1 + s)
        out.append(e)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--lockstep", required=True)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--slowdowns", default="0.02,0.03,0.05,0.10,0.15,0.20,0.30")
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--out")
    a = ap.parse_args()
    suites = [s for s in a.suites.split(",") if s]
    slowdowns = [float(s) for s in a.slowdowns.split(",")]
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.pairs):
            base, cand = one_pair(a.bench_dir, suites, a.rounds, tmp)
            verdicts = gate(a.lockstep, base, cand, a.threshold, tmp)
            caught = {s: gate(a.lockstep, base, slowed(cand, s), a.threshold, tmp) for s in slowdowns}
            pairs.append({"verdicts": verdicts, "caught": caught, "base": base, "candidate": cand})
            alarms = [n for n, v in verdicts.items() if v["regression"]]
            print(f"pair {i + 1}/{a.pairs}: {len(verdicts)} benchmarks, A/A alarms: {alarms or 'none'}",
                  file=sys.stderr)
    names = sorted(pairs[0]["verdicts"])
    # The raw entries too, so other thresholds can be tried on the same measurements.
    report = {"pairs": a.pairs, "rounds": a.rounds, "threshold": a.threshold, "benchmarks": {},
              "samples": [{"base": p["base"], "candidate": p["candidate"]} for p in pairs]}
    print(f"{'benchmark':44} {'measure':12} {'A/A alarms':>10} {'w/ rerun':>8} {'A/A ratio range':>17}  "
          f"caught at +{', +'.join(f'{s:.0%}' for s in slowdowns)}")
    for n in names:
        v = [p["verdicts"][n] for p in pairs if n in p["verdicts"]]
        one = sum(x["regression"] for x in v)
        two = sum(v[i]["regression"] and v[i + 1]["regression"] for i in range(len(v) - 1))
        ratios = [x["ratio"] for x in v]
        power = {s: sum(p["caught"][s][n]["regression"] for p in pairs if n in p["caught"][s]) / len(v)
                 for s in slowdowns}
        smallest = next((s for s in slowdowns if power[s] >= 0.95), None)
        report["benchmarks"][n] = {"measure": v[0]["measure"], "aa_alarms": one, "aa_alarms_with_rerun": two,
                                   "aa_ratio_min": min(ratios), "aa_ratio_max": max(ratios),
                                   "caught_share": {f"{s:g}": power[s] for s in slowdowns},
                                   "smallest_caught_95": smallest}
        print(f"{n[:44]:44} {v[0]['measure']:12} {one:>6}/{len(v):<3} {two:>8} {min(ratios):8.4f}-{max(ratios):.4f}  "
              + " ".join(f"{power[s]:.2f}" for s in slowdowns)
              + (f"  (95%: +{smallest:.0%})" if smallest is not None else "  (95%: none)"))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
