// `lockstep bench`'s ratios and floors: ratios from the medians of the repetitions, a floor
// crossed exits 1 and a held one 0, unmeasured ratios are named but never fail, and a
// malformed floors file or missing suites exit 2. The suites here are stand-in scripts
// that write canned Google Benchmark JSON, so the test runs in milliseconds.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "bench/gate.h"
#include "bench/ratios.h"
#include "bench/runner.h"
#include "formats/json_file.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

using nlohmann::json;

std::optional<double> RatioNamed(const std::vector<RatioValue>& ratios, const std::string& name) {
  for (const auto& r : ratios) {
    if (r.name == name) return r.value;
  }
  ADD_FAILURE() << "no ratio " << name;
  return std::nullopt;
}

TEST(BenchRatios, SpeedupsAreYardstickOverOursFromMedians) {
  BenchSamples r;
  r.times_ns["BM_Save/layers:2/iterations:1/manual_time"] = {100, 1000, 110};  // median 110: an outlier is ignored
  r.times_ns["BM_RawWrite/layers:2/iterations:1/manual_time"] = {88, 90, 85};  // median 88
  r.times_ns["BM_Train/size:0/iterations:1/manual_time"] = {10, 10, 10};
  r.counters["BM_Train/size:0/iterations:1/manual_time"]["record_share"] = {0.02, 0.01, 0.012};
  const auto ratios = ComputeRatios(r);
  EXPECT_NEAR(*RatioNamed(ratios, "save_vs_raw_write_2"), 0.8, 1e-12);
  EXPECT_NEAR(*RatioNamed(ratios, "recording_share_mlp"), 0.012, 1e-12);
  EXPECT_FALSE(RatioNamed(ratios, "train_mlp_vs_python").has_value());  // no peer ran
}

TEST(BenchRatios, SkippedBenchmarksAreLeftOutAndCountersRead) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("r.json"), R"({"benchmarks": [
    {"name": "BM_PythonTrain/size:0", "run_type": "iteration", "error_occurred": true, "real_time": 0, "time_unit": "ms"},
    {"name": "BM_Train/size:0", "run_type": "iteration", "real_time": 5, "time_unit": "ms", "items_per_second": 120.5},
    {"name": "BM_Train/size:0_median", "run_type": "aggregate", "real_time": 5, "time_unit": "ms"}]})");
  BenchSamples r;
  ASSERT_OK(ReadBenchmarkJson(dir.Join("r.json"), &r));
  EXPECT_EQ(r.times_ns.count("BM_PythonTrain/size:0"), 0u);
  ASSERT_EQ(r.times_ns["BM_Train/size:0"].size(), 1u);
  EXPECT_EQ(r.counters["BM_Train/size:0"]["items_per_second"], std::vector<double>{120.5});
}

// Google Benchmark writes the coefficient of variation of an always-zero counter as a bare
// NaN, which is not JSON: the reader takes it as null, and the rest of the file as it is.
TEST(BenchRatios, BareNanCountersFromGoogleBenchmarkAreRead) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("r.json"), R"({"benchmarks": [
    {"name": "BM_DataParallel/ranks:1", "run_type": "iteration", "real_time": 5, "time_unit": "ms", "allreduce_ms": 0},
    {"name": "BM_DataParallel/ranks:1_cv", "run_type": "aggregate", "real_time": 0.1, "time_unit": "ms", "allreduce_ms": NaN},
    {"name": "BM_X", "run_type": "iteration", "real_time": 7, "time_unit": "ms", "a": -Infinity, "label": "NaN"}]})");
  BenchSamples r;
  ASSERT_OK(ReadBenchmarkJson(dir.Join("r.json"), &r));
  EXPECT_EQ(r.times_ns["BM_DataParallel/ranks:1"].size(), 1u);
  EXPECT_EQ(r.times_ns["BM_X"].size(), 1u);
  nlohmann::json doc;
  ASSERT_OK(ReadGoogleBenchmarkFile(dir.Join("r.json"), &doc));
  EXPECT_TRUE(doc["benchmarks"][1]["allreduce_ms"].is_null());
  EXPECT_EQ(doc["benchmarks"][2]["label"], "NaN");  // a string stays a string
}

std::vector<RatioValue> SomeRatios() {
  return {{"save_vs_raw_write_2", "", ">= 0.8", 0.5},
          {"recording_share_mlp", "", "<= 0.01", 0.02},
          {"train_mlp_vs_python", "", "", std::nullopt}};
}

TEST(BenchFloors, CrossedHeldAndUnmeasured) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("f.json"), R"({"_comment": "x", "save_vs_raw_write_2": {"min": 0.4},
                                         "recording_share_mlp": {"max": 0.01}, "train_mlp_vs_python": {"min": 1}})");
  FloorReport report;
  ASSERT_OK(CheckFloors(dir.Join("f.json"), SomeRatios(), &report));
  ASSERT_EQ(report.checked.size(), 2u);
  EXPECT_FALSE(report.checked[1].crossed);  // save 0.5 >= 0.4 (keys sort: recording first)
  EXPECT_TRUE(report.checked[0].crossed);   // recording 0.02 > 0.01
  EXPECT_TRUE(report.crossed());
  EXPECT_EQ(report.missing, std::vector<std::string>{"train_mlp_vs_python"});
  EXPECT_NE(FloorReportText(report).find("FLOOR CROSSED  recording_share_mlp"), std::string::npos);
}

TEST(BenchFloors, AMalformedFileOrAnUnknownRatioIsCorruptionNamingTheFile) {
  test::ScratchDir dir;
  FloorReport report;
  for (const std::string text : {R"({"save_vs_raw_writ_2": {"min": 1}})", R"({"save_vs_raw_write_2": {"least": 1}})",
                                 R"([1, 2])", R"({"save_vs_raw_write_2": )"}) {
    test::WriteAll(dir.Join("f.json"), text);
    const Status st = CheckFloors(dir.Join("f.json"), SomeRatios(), &report);
    EXPECT_TRUE(st.IsCorruption()) << text << ": " << st.ToString();
    EXPECT_NE(st.message().find("f.json"), std::string::npos) << st.message();
  }
}

// A stand-in suite: writes one result (`ns` for the save, `raw_ns` for the raw write) to
// the file its --benchmark_out= names, as a gbench binary would.
void WriteStandInSuites(const std::string& dir, double save_ns, double raw_ns) {
  const std::string results = R"({"context": {"num_cpus": 2}, "benchmarks": [
    {"name": "BM_Save/layers:2/iterations:1/manual_time", "run_type": "iteration", "real_time": )" +
                              std::to_string(save_ns) + R"(, "time_unit": "ns"},
    {"name": "BM_RawWrite/layers:2/iterations:1/manual_time", "run_type": "iteration", "real_time": )" +
                              std::to_string(raw_ns) + R"(, "time_unit": "ns"}]})";
  test::WriteAll(dir + "/results.json", results);
  for (const auto& suite : BenchSuites()) {
    const std::string path = dir + "/" + suite.binary;
    test::WriteAll(path, "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --benchmark_out=*) cp " + dir +
                             "/results.json \"${a#--benchmark_out=}\";; esac; done\n");
    ::chmod(path.c_str(), 0755);
  }
}

TEST(BenchCli, FloorsExitOneWhenCrossedZeroWhenHeldTwoWithoutSuites) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("floors.json"), R"({"save_vs_raw_write_2": {"min": 0.8}})");
  const std::string bench = "LOCKSTEP_BENCH_DIR=" + dir.path() + " " + LOCKSTEP_BIN + " bench --quick --check-floors " +
                            dir.Join("floors.json");
  WriteStandInSuites(dir.path(), 100, 90);  // 0.9: held
  auto o = test::RunCommand(bench + " --out " + dir.Join("all.json"));
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("floors: all held"), std::string::npos) << o.out;
  json all;
  ASSERT_OK(ReadJsonFile(dir.Join("all.json"), &all));
  EXPECT_EQ(all["benchmarks"].size(), 2 * 5u);  // the 5 quick suites, merged
  EXPECT_EQ(all["context"]["lockstep_bench"]["quick"], true);

  WriteStandInSuites(dir.path(), 100, 50);  // 0.5: crossed
  o = test::RunCommand(bench + " --json");
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("\"crossed\": true"), std::string::npos) << o.out;

  o = test::RunCommand("LOCKSTEP_BENCH_DIR=" + dir.Join("nowhere") + " " + LOCKSTEP_BIN + " bench --quick");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("not built"), std::string::npos) << o.out;
  o = test::RunCommand(bench + " --repetitions 1");
  EXPECT_EQ(o.code, 2) << o.out;
}

// `bench ab --baseline OLD_LOCKSTEP`: the old build's suites (found beside its lockstep, as
// in a build tree: bin/lockstep and bench/*_bench) against this one's, interleaved.
TEST(BenchCli, AbAgainstAnotherBuildCatchesASlowdownOfItsSuites) {
  test::ScratchDir old_build, new_suites;
  fs::create_directories(old_build.Join("cli"));
  fs::create_directories(old_build.Join("bench"));
  test::WriteAll(old_build.Join("cli/lockstep"), "#!/bin/sh\n");
  ::chmod(old_build.Join("cli/lockstep").c_str(), 0755);
  WriteStandInSuites(old_build.Join("bench"), 100, 90);
  const std::string ab =
      "LOCKSTEP_BENCH_DIR=" + new_suites.path() + " " + LOCKSTEP_BIN + " bench ab --quick --rounds 6";
  const std::string against_old = ab + " --baseline " + old_build.Join("cli/lockstep");

  WriteStandInSuites(new_suites.path(), 140, 90);  // the save 40% slower
  auto o = test::RunCommand(against_old);
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("BM_Save/layers:2"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("lockstep bench ab: train_bench"), std::string::npos) << o.out;  // progress per suite

  WriteStandInSuites(new_suites.path(), 100, 90);  // the same speed
  o = test::RunCommand(against_old);
  EXPECT_EQ(o.code, 0) << o.out;

  o = test::RunCommand(ab + " --baseline " + old_build.Join("nowhere/lockstep"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("not a lockstep with benchmark suites beside it"), std::string::npos) << o.out;
  o = test::RunCommand(against_old + " a b");
  EXPECT_EQ(o.code, 2) << o.out;
}

}  // namespace
}  // namespace lockstep
