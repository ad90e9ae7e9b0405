// The CI gate's statistics and exit codes: Mann-Whitney U against known values, a 40%
// slowdown caught and a 3% one not, A/A noise never alarmed, and bad inputs exit 2.
#include <cmath>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "bench/gate.h"
#include "formats/json_file.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

using nlohmann::json;

TEST(MannWhitney, ExactTailsForSmallSamples) {
  const std::vector<double> low = {1, 2, 3, 4, 5}, high = {6, 7, 8, 9, 10};
  EXPECT_NEAR(MannWhitneyGreaterP(low, high), 1.0 / 252, 1e-12);  // every arrangement but one is less extreme
  EXPECT_NEAR(MannWhitneyGreaterP(high, low), 1.0, 1e-12);
  EXPECT_NEAR(SmallestReachableP(5, 5), 1.0 / 252, 1e-12);
  EXPECT_NEAR(SmallestReachableP(3, 3), 1.0 / 20, 1e-12);
  // One swap at the boundary: U = 24 of 25, two arrangements at least that extreme.
  EXPECT_NEAR(MannWhitneyGreaterP({1, 2, 3, 4, 6}, {5, 7, 8, 9, 10}), 2.0 / 252, 1e-12);
}

TEST(MannWhitney, TiesUseTheNormalApproximation) {
  const std::vector<double> same(20, 1.0);
  EXPECT_GT(MannWhitneyGreaterP(same, same), 0.4);
  std::vector<double> a, b;
  for (int i = 0; i < 40; ++i) a.push_back(i % 5), b.push_back(i % 5 + 3);
  EXPECT_LT(MannWhitneyGreaterP(a, b), 1e-6);
}

// `n` repetitions of a benchmark taking `ns`, with multiplicative noise of `noise` (sd).
std::vector<double> Samples(std::mt19937* gen, double ns, double noise, int n) {
  std::normal_distribution<double> d(0.0, noise);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) out.push_back(ns * std::exp(d(*gen)));
  return out;
}

GateReport Gate(const std::vector<double>& a, const std::vector<double>& b) {
  BenchSamples base, candidate;
  base.times_ns["BM_Train"] = a;
  base.times_ns["BM_Save"] = {1, 1.01, 0.99, 1, 1};
  candidate.times_ns["BM_Train"] = b;
  candidate.times_ns["BM_Save"] = {1, 1.01, 0.99, 1, 1};
  GateReport r;
  EXPECT_OK(CompareBenchmarks(base, candidate, GateOptions(), &r));
  return r;
}

TEST(Gate, AFortyPercentSlowdownIsCaughtAndThreePercentIsNot) {
  std::mt19937 gen(12);
  GateReport r = Gate(Samples(&gen, 100, 0.05, 10), Samples(&gen, 140, 0.05, 10));
  EXPECT_TRUE(r.regressed());
  EXPECT_EQ(r.benchmarks[1].name, "BM_Train");
  EXPECT_TRUE(r.benchmarks[1].regression);
  EXPECT_NEAR(r.benchmarks[1].ratio, 1.4, 0.1);
  EXPECT_FALSE(r.benchmarks[0].regression);  // BM_Save is unchanged
  EXPECT_NE(GateReportText(r).find("REGRESSED"), std::string::npos);
  r = Gate(Samples(&gen, 100, 0.01, 10), Samples(&gen, 103, 0.01, 10));
  EXPECT_FALSE(r.regressed());  // significant, but under the 10% minimum effect
  EXPECT_LT(r.benchmarks[1].p_slower, 0.01);
  r = Gate(Samples(&gen, 140, 0.05, 10), Samples(&gen, 100, 0.05, 10));
  EXPECT_FALSE(r.regressed());
  EXPECT_TRUE(r.benchmarks[1].improvement);
}

// Calibration: the same build against itself. With 5% run-to-run noise (sd, more than
// these machines show between repetitions) the defaults never alarm; with a noisy 10%,
// --alpha 0.001 keeps false alarms under 0.2% while a 40% slowdown is still caught.
TEST(Gate, AToAComparisonsNeverAlarmAtTheDefaults) {
  std::mt19937 gen(20261124);
  int alarms = 0;
  for (int trial = 0; trial < 2000; ++trial)
    alarms += Gate(Samples(&gen, 100, 0.05, 10), Samples(&gen, 100, 0.05, 10)).regressed();
  EXPECT_EQ(alarms, 0);
  GateOptions strict;
  strict.alpha = 0.001;
  alarms = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    BenchSamples a, b;
    a.times_ns["x"] = Samples(&gen, 100, 0.10, 10);
    b.times_ns["x"] = Samples(&gen, 100, 0.10, 10);
    GateReport r;
    ASSERT_OK(CompareBenchmarks(a, b, strict, &r));
    alarms += r.regressed();
  }
  EXPECT_LE(alarms, 4);
  BenchSamples a, b;
  a.times_ns["x"] = Samples(&gen, 100, 0.10, 10);
  b.times_ns["x"] = Samples(&gen, 140, 0.10, 10);
  GateReport r;
  ASSERT_OK(CompareBenchmarks(a, b, strict, &r));
  EXPECT_TRUE(r.regressed());
}

// Power by design: the suites run at least the repetitions the exact test needs to reach
// alpha, and at that count a clear slowdown fires.
TEST(Gate, RepetitionsAreChosenSoTheExactTestCanReachAlpha) {
  EXPECT_EQ(RepetitionsToReach(0.01), 5);  // 1/C(10,5) = 0.004; 4 each reach only 1/70 = 0.014
  EXPECT_EQ(RepetitionsToReach(0.05), 4);  // 1/C(8,4) = 0.014; 3 each reach only 1/20 = 0.05
  EXPECT_EQ(RepetitionsToReach(0.001), 7);
  for (double alpha : {0.05, 0.01, 0.001}) {
    const int n = RepetitionsToReach(alpha);
    EXPECT_LT(SmallestReachableP(n, n), alpha);
    EXPECT_GE(SmallestReachableP(n - 1, n - 1), alpha);
  }
  std::mt19937 gen(5);
  const GateReport r = Gate(Samples(&gen, 100, 0.01, 5), Samples(&gen, 140, 0.01, 5));
  EXPECT_FALSE(r.benchmarks[1].underpowered);
  EXPECT_NEAR(r.benchmarks[1].p_slower, 1.0 / 252, 1e-12);
  EXPECT_TRUE(r.regressed());
}

// Instruction counts: no significance test, a tight threshold; the measure is named.
TEST(Gate, InstructionCountsAreJudgedByTheirOwnThreshold) {
  auto samples = [](double instructions) {
    BenchSamples s;
    s.times_ns["INSTR_x"] = {1e6};
    s.counters["INSTR_x"][kInstructionsCounter] = {instructions};
    return s;
  };
  GateReport r;
  ASSERT_OK(CompareBenchmarks(samples(1e7), samples(1.01e7), GateOptions(), &r));
  EXPECT_EQ(r.benchmarks[0].measure, "instructions");
  EXPECT_FALSE(r.regressed());
  EXPECT_FALSE(r.benchmarks[0].underpowered);  // one count each is enough: it repeats
  ASSERT_OK(CompareBenchmarks(samples(1e7), samples(1.02e7), GateOptions(), &r));  // 2%: always caught
  EXPECT_TRUE(r.regressed());
  EXPECT_NE(GateReportText(r).find("instructions"), std::string::npos) << GateReportText(r);
  BenchSamples timed = samples(1e7);
  timed.counters.clear();
  EXPECT_TRUE(CompareBenchmarks(timed, samples(1e7), GateOptions(), &r).IsInvalidArgument());
}

TEST(Gate, TooFewRepetitionsAreFlagged) {
  std::mt19937 gen(3);
  const GateReport r = Gate(Samples(&gen, 100, 0.01, 3), Samples(&gen, 200, 0.01, 3));
  EXPECT_TRUE(r.benchmarks[1].underpowered);
  EXPECT_FALSE(r.regressed());  // 1/20 can never be below 0.01: said, not silently passed
  EXPECT_NE(GateReportText(r).find("too few repetitions"), std::string::npos);
}

json GbenchJson(const std::string& name, const std::vector<double>& times_ms) {
  json b = json::array();
  for (size_t i = 0; i < times_ms.size(); ++i) {
    b.push_back({{"name", name},
                 {"run_name", name},
                 {"run_type", "iteration"},
                 {"repetition_index", i},
                 {"real_time", times_ms[i]},
                 {"cpu_time", times_ms[i]},
                 {"time_unit", "ms"}});
  }
  b.push_back({{"name", name + "_mean"},
               {"run_name", name},
               {"run_type", "aggregate"},
               {"aggregate_name", "mean"},
               {"real_time", 1e9},
               {"time_unit", "ms"}});
  return {{"context", {{"library_build_type", "release"}}}, {"benchmarks", b}};
}

TEST(Gate, ReadsGoogleBenchmarkJsonSkippingAggregates) {
  test::ScratchDir dir;
  ASSERT_OK(WriteJsonFile(dir.Join("a.json"), GbenchJson("BM_X", {1, 2, 3})));
  BenchSamples s;
  ASSERT_OK(ReadBenchmarkJson(dir.Join("a.json"), &s));
  ASSERT_EQ(s.times_ns["BM_X"].size(), 3u);  // the mean aggregate is not a repetition
  EXPECT_DOUBLE_EQ(s.times_ns["BM_X"][1], 2e6);
  test::WriteAll(dir.Join("bad.json"), R"({"benchmarks": [{"name": "x", "real_time": "fast"}]})");
  const Status st = ReadBenchmarkJson(dir.Join("bad.json"), &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("bad.json"), std::string::npos);
}

TEST(GateCli, ExitCodesAreOneForARegressionZeroOtherwiseTwoForBadInput) {
  test::ScratchDir dir;
  ASSERT_OK(WriteJsonFile(dir.Join("base.json"), GbenchJson("BM_Step", {10, 10.2, 9.9, 10.1, 10, 10.3, 9.8, 10})));
  ASSERT_OK(WriteJsonFile(dir.Join("slow.json"), GbenchJson("BM_Step", {14, 14.2, 13.9, 14.1, 14, 14.3, 13.8, 14})));
  ASSERT_OK(WriteJsonFile(dir.Join("other.json"), GbenchJson("BM_Other", {1, 1, 1})));
  const std::string bin = std::string(LOCKSTEP_BIN) + " bench compare ";
  auto o = test::RunCommand(bin + dir.Join("base.json") + " " + dir.Join("slow.json"));
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("BM_Step"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("REGRESSED"), std::string::npos) << o.out;
  o = test::RunCommand(bin + dir.Join("base.json") + " " + dir.Join("base.json"));
  EXPECT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(bin + dir.Join("base.json") + " " + dir.Join("other.json"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("share no benchmark"), std::string::npos) << o.out;
  o = test::RunCommand(bin + dir.Join("base.json") + " " + dir.Join("absent.json"));
  EXPECT_EQ(o.code, 2) << o.out;
  o = test::RunCommand(bin + dir.Join("base.json") + " " + dir.Join("slow.json") + " --alpha 2");
  EXPECT_EQ(o.code, 2) << o.out;
  o = test::RunCommand(bin + dir.Join("base.json") + " " + dir.Join("slow.json") + " --json");
  EXPECT_EQ(json::parse(o.out)["regressed"], true);
  // Three repetitions each can never reach p < 0.01: not judged, and not passed (exit 2).
  ASSERT_OK(WriteJsonFile(dir.Join("few.json"), GbenchJson("BM_Step", {10, 10.2, 9.9})));
  ASSERT_OK(WriteJsonFile(dir.Join("few_slow.json"), GbenchJson("BM_Step", {14, 14.2, 13.9})));
  o = test::RunCommand(bin + dir.Join("few.json") + " " + dir.Join("few_slow.json"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("NOT JUDGED"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("run at least 5 of each"), std::string::npos) << o.out;
}

// A stand-in benchmark binary: writes Google Benchmark JSON with one repetition of `ms`
// milliseconds (and a little noise from its PID) to the --benchmark_out=FILE it is given.
// With `slow_first`, its first that many runs take `slow_ms` instead (a transient: a noisy
// neighbour). It refuses a --benchmark_filter that does not select BM_Step, as gbench would
// find nothing to run.
std::string FakeBench(const test::ScratchDir& dir, const std::string& name, double ms, int slow_first = 0,
                      double slow_ms = 0) {
  const std::string path = dir.Join(name);
  test::WriteAll(
      path,
      "#!/bin/sh\nfor a in \"$@\"; do case $a in --benchmark_out=*) out=${a#--benchmark_out=};; "
      "--benchmark_filter=*) echo BM_Step | grep -Eq -- \"${a#--benchmark_filter=}\" || exit 3;; esac; done\n"
      "n=$(cat " +
          path + ".runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > " + path +
          ".runs\n"
          "us=" +
          std::to_string(static_cast<int>(ms * 1000)) +
          "\n"
          "[ $n -le " +
          std::to_string(slow_first) + " ] && us=" + std::to_string(static_cast<int>(slow_ms * 1000)) +
          "\n"
          "t=$(( us + $$ % 97 ))\n"
          "printf '{\"benchmarks\": [{\"name\": \"BM_Step\", \"run_type\": \"iteration\", "
          "\"real_time\": %s, \"time_unit\": \"us\"}]}' $t > \"$out\"\n");
  EXPECT_EQ(test::RunCommand("chmod +x " + path).code, 0);
  return path;
}

TEST(GateCli, AbRunsBothBinariesInterleavedAndGatesThem) {
  test::ScratchDir dir;
  const std::string fast = FakeBench(dir, "fast.sh", 10), slow = FakeBench(dir, "slow.sh", 15);
  const std::string bin = std::string(LOCKSTEP_BIN) + " bench ab ";
  auto o = test::RunCommand("(" + bin + fast + " " + slow + " --rounds 8 --json 2>/dev/null)");  // progress: stderr
  EXPECT_EQ(o.code, 1) << o.out;
  const json j = json::parse(o.out);
  EXPECT_EQ(j["benchmarks"][0]["base_n"], 8);
  EXPECT_TRUE(j["benchmarks"][0]["regression"].get<bool>());
  o = test::RunCommand(bin + fast + " " + fast + " --rounds 8");
  EXPECT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(bin + fast + " " + dir.Join("absent") + " --rounds 2");
  EXPECT_EQ(o.code, 2) << o.out;  // not a runnable binary: unreadable input
  o = test::RunCommand(bin + fast + " " + slow + " --rounds 1");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_EQ(j["benchmarks"][0]["rerun"]["base_n"], 8);  // the suspect was measured again
  EXPECT_TRUE(j["benchmarks"][0]["rerun"]["regression"].get<bool>());
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff a b -- c");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("takes no pass-through arguments"), std::string::npos) << o.out;
}

// Sequential: a slowdown seen in the first rounds only (a noisy neighbour) is rerun and
// cleared; a real one holds on the rerun and fails the gate.
TEST(GateCli, AbRerunsSuspectsAndRequiresTheRegressionToHold) {
  test::ScratchDir dir;
  const std::string fast = FakeBench(dir, "fast.sh", 10);
  const std::string transient = FakeBench(dir, "transient.sh", 10, /*slow_first=*/6, /*slow_ms=*/15);
  const std::string bin = std::string(LOCKSTEP_BIN) + " bench ab ";
  auto o = test::RunCommand(bin + fast + " " + transient + " --rounds 6");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("a suspect the rerun cleared"), std::string::npos) << o.out;
  EXPECT_EQ(test::ReadAll(transient + ".runs"), "12\n");  // 6 rounds, then 6 more for the suspect
  const std::string slow = FakeBench(dir, "slow.sh", 15);
  o = test::RunCommand(bin + fast + " " + slow + " --rounds 6");
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("REGRESSED, held on the rerun"), std::string::npos) << o.out;
  EXPECT_EQ(FilterForNames({"BM_Save/layers:2/real_time", "a.b"}), "^(BM_Save/layers:2/real_time|a\\.b)$");
}

#ifdef LOCKSTEP_INSTR_BENCH
// The instruction measure end to end: instr_bench counted by callgrind, twice for the same
// build (A/A: the same count to well within the 1.5% threshold), then against a build that
// does 6% more work on purpose (--instr_scale: 53 benchmarks gated instead of 50).
TEST(GateCli, TheInstructionMeasureCatchesAPlantedIncreaseAndPassesAToA) {
  test::ScratchDir dir;
  const std::string more = dir.Join("more.sh");
  test::WriteAll(more, std::string("#!/bin/sh\nexec ") + LOCKSTEP_INSTR_BENCH + " --instr_scale=1.06 \"$@\"\n");
  ASSERT_EQ(test::RunCommand("chmod +x " + more).code, 0);
  const std::string ab = std::string(LOCKSTEP_BIN) + " bench ab " + LOCKSTEP_INSTR_BENCH + " ";
  const std::string args = " --rounds 2 --json -- --benchmark_filter=INSTR_bench_gate 2>/dev/null)";
  auto o = test::RunCommand("(" + ab + LOCKSTEP_INSTR_BENCH + args);
  ASSERT_EQ(o.code, 0) << o.out;
  json j = json::parse(o.out);
  ASSERT_EQ(j["benchmarks"].size(), 1u);
  EXPECT_EQ(j["benchmarks"][0]["measure"], "instructions");
  EXPECT_NEAR(j["benchmarks"][0]["ratio"].get<double>(), 1.0, 0.002);
  EXPECT_GT(j["benchmarks"][0]["base_median"].get<double>(), 1e5);  // a real count, not a placeholder
  o = test::RunCommand("(" + ab + more + args);
  EXPECT_EQ(o.code, 1) << o.out;
  j = json::parse(o.out);
  EXPECT_TRUE(j["benchmarks"][0]["regression"].get<bool>());
  EXPECT_GT(j["benchmarks"][0]["ratio"].get<double>(), 1.02);
}
#endif

}  // namespace
}  // namespace lockstep
