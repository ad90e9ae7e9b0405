// lockstep report: the page's structure (SVG, the divergence named with its cause, nothing
// outside the file), hostile runs (NaN and infinities, one step, a million steps, unicode
// and markup in names), real runs and real Hugging Face directories, and the command's
// exit codes and faults. Rendering in Chromium: report_render_test.cc.
#include <sys/mount.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include <gtest/gtest.h>

#include "bench/synthetic_run.h"
#include "formats/json_file.h"
#include "report/html.h"
#include "report/report.h"
#include "report/svg_chart.h"
#include "report/thin.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

test::CommandOutput Lockstep(const std::string& args) {
  return test::RunCommand(std::string(LOCKSTEP_BIN) + " " + args);
}

std::string Render(const std::vector<std::string>& dirs, RunsReportSummary* summary = nullptr,
                   const RunsReportOptions& options = RunsReportOptions()) {
  std::string html;
  RunsReportSummary ignored;
  const Status st = RenderRunsReport(dirs, options, &html, summary ? summary : &ignored);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return html;
}

bool Has(const std::string& html, const std::string& text) { return html.find(text) != std::string::npos; }

// Nothing in the page reaches outside it: no script, stylesheet, font, image or address.
void ExpectSelfContained(const std::string& html) {
  for (const char* banned : {"<script", "http:", "https:", "src=", "href=", "url(", "@import", "<link", "<img",
                             "<iframe", "<object", "<embed", "ftp:", "file:"}) {
    EXPECT_FALSE(Has(html, banned)) << "the page refers outside itself: " << banned;
  }
}

TEST(Report, APageOfTwoRunsNamesWhereAndWhyTheyPartAndNeedsNothingOutsideIt) {
  test::ScratchDir dir;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), {}));
  SyntheticRun b;
  b.shuffled_step = 40;
  b.resume_after = 30;
  ASSERT_OK(WriteSyntheticRun(dir.Join("b"), b));
  RunsReportSummary summary;
  const std::string html = Render({dir.Join("a"), dir.Join("b")}, &summary);
  EXPECT_TRUE(Has(html, "<!DOCTYPE html>"));
  EXPECT_TRUE(Has(html, "<svg"));
  EXPECT_TRUE(Has(html, "b parts at step 40: data")) << "the divergence line, with its cause";
  EXPECT_TRUE(Has(html, "DIFFERENT: the runs part at step 40, cause data"));
  EXPECT_TRUE(Has(html, "b resumed after step 30 from checkpoint-30"));
  // The synthetic losses are the step's own, the same in both runs: no delta to draw (issue
  // 33, finding 8: an empty box was drawn), said instead.
  EXPECT_FALSE(Has(html, "<desc id=\"loss-delta-d\">"));
  EXPECT_TRUE(Has(html, "Loss difference after the divergence: none to draw"));
  EXPECT_TRUE(Has(html, "samples drawn per epoch"));
  // Accessible: every chart has a title and a description, and axis labels.
  EXPECT_TRUE(Has(html, "role=\"img\""));
  EXPECT_TRUE(Has(html, "<desc id=\"loss-d\">"));
  EXPECT_TRUE(Has(html, ">step</text>"));
  ExpectSelfContained(html);
  EXPECT_EQ(summary.comparisons, 1);
  EXPECT_EQ(summary.identical, 0);
  EXPECT_FALSE(summary.all_identical());
}

// Issue 33, finding 8: the delta chart is drawn where the losses part; the grad-norm chart
// says what each run recorded (the HF callback's is after clipping); a loss that starts far
// above where it settles does not squash the rest of its chart.
TEST(Report, TheChartsSayWhatWasRecordedAndFitTheSettledLoss) {
  test::ScratchDir dir;
  SyntheticRun a;
  a.steps = 2000;
  a.loss = [](int64_t step) { return step <= 20 ? 60.0f : SyntheticLoss(step); };
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), a));
  SyntheticRun b = a;
  b.shuffled_step = 400;
  b.loss = [](int64_t step) { return step <= 20 ? 60.0f : SyntheticLoss(step) * (step >= 400 ? 1.01f : 1.0f); };
  b.grad_norm_measured = "after clipping";
  ASSERT_OK(WriteSyntheticRun(dir.Join("b"), b));
  const std::string html = Render({dir.Join("a"), dir.Join("b")});
  EXPECT_TRUE(Has(html, "<desc id=\"loss-delta-d\">")) << "the losses part: the delta is drawn";
  EXPECT_TRUE(Has(html, "Gradient norm (a: as the loop recorded it; b: after clipping)"));
  EXPECT_FALSE(Has(html, "Gradient norm (before clipping)"));
  EXPECT_TRUE(Has(html, "above the axis, which fits the steps after the first 5% (× at the top)"))
      << "the first steps' loss, 60, is off the settled axis";
}

TEST(Report, IdenticalRunsSayHowManyStepsWereComparedAndDrawNoDivergence) {
  test::ScratchDir dir;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), {}));
  ASSERT_OK(WriteSyntheticRun(dir.Join("a2"), {}));
  RunsReportSummary summary;
  const std::string html = Render({dir.Join("a"), dir.Join("a2")}, &summary);
  EXPECT_TRUE(Has(html, "IDENTICAL: 100 steps bit for bit (step log)"));
  EXPECT_FALSE(Has(html, "parts at step"));
  EXPECT_FALSE(Has(html, "|loss delta|"));
  EXPECT_TRUE(summary.all_identical());
  EXPECT_EQ(summary.identical, 1);
}

TEST(Report, NanAndInfiniteLossesAreMarkedAtTheChartsEdgeAndCounted) {
  test::ScratchDir dir;
  SyntheticRun run;
  run.loss = [](int64_t step) {
    if (step >= 10 && step <= 12) return std::numeric_limits<float>::quiet_NaN();
    if (step == 20) return std::numeric_limits<float>::infinity();
    if (step == 30) return -std::numeric_limits<float>::infinity();
    return SyntheticLoss(step);
  };
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), run));
  const std::string html = Render({dir.Join("a")});
  EXPECT_TRUE(Has(html, "3 NaN (× at the top)")) << html.substr(0, 2000);
  EXPECT_TRUE(Has(html, "1 +inf (× at the top)"));
  EXPECT_TRUE(Has(html, "1 -inf (× at the bottom)"));
  EXPECT_TRUE(Has(html, "<path d=\"M")) << "the finite losses are still drawn";
}

// HF's trainer_state.json once a loss diverges: Python's json writes NaN and Infinity bare.
TEST(Report, HuggingFaceRunsWhoseLossDivergedAreReadDrawnAndComparedAsEqual) {
  test::ScratchDir dir;
  const std::string state = R"({"global_step": 3, "log_history": [
      {"step": 1, "loss": 2.5, "grad_norm": 1.5, "learning_rate": 5e-05},
      {"step": 2, "loss": NaN, "grad_norm": Infinity, "learning_rate": 4e-05},
      {"step": 3, "loss": NaN, "grad_norm": NaN, "learning_rate": 3e-05}]})";
  for (const char* run : {"a", "b"}) {
    fs::create_directories(dir.Join(run));
    test::WriteAll(dir.Join(std::string(run) + "/trainer_state.json"), state);
  }
  RunsReportSummary summary;
  const std::string html = Render({dir.Join("a"), dir.Join("b")}, &summary);
  EXPECT_TRUE(Has(html, "2 NaN (× at the top)")) << "the loss chart marks both NaN steps";
  EXPECT_TRUE(Has(html, "1 +inf (× at the top)"));
  EXPECT_TRUE(Has(html, "IDENTICAL: 3 log entries bit for bit (log_history)"));
  EXPECT_EQ(summary.identical, 1);
  const auto diff = Lockstep("diff " + dir.Join("a") + " " + dir.Join("b"));
  EXPECT_EQ(diff.code, 0) << diff.out;
  const auto inspect = Lockstep("inspect " + dir.Join("a"));
  EXPECT_FALSE(Has(inspect.out, "invalid JSON")) << inspect.out;
}

TEST(Report, ARunWhoseLossesAreAllNanSaysSoInsteadOfDrawingAnAxis) {
  test::ScratchDir dir;
  SyntheticRun run;
  run.loss = [](int64_t) { return std::numeric_limits<float>::quiet_NaN(); };
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), run));
  EXPECT_TRUE(Has(Render({dir.Join("a")}), "no finite value to draw"));
}

TEST(Report, ARunOfOneStepIsDrawnAsAPoint) {
  test::ScratchDir dir;
  SyntheticRun run;
  run.steps = 1;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), run));
  const std::string html = Render({dir.Join("a")});
  EXPECT_TRUE(Has(html, "<circle")) << "one point draws no line: a dot";
  EXPECT_TRUE(Has(html, "1 step record"));
}

TEST(Report, AMillionStepsMakeAPageUnderAMegabyteThatKeepsTheDivergence) {
  test::ScratchDir dir;
  SyntheticRun run;
  run.steps = 1000000;
  run.dataset_size = 8000;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), run));
  run.loss = [](int64_t step) { return step == 654321 ? 99.0f : SyntheticLoss(step); };
  ASSERT_OK(WriteSyntheticRun(dir.Join("b"), run));
  const std::string html = Render({dir.Join("a"), dir.Join("b")});
  EXPECT_LT(html.size(), 1000000u);
  EXPECT_TRUE(Has(html, "b parts at step 654321: numerics"));
  EXPECT_TRUE(Has(html, "1,000,000 points")) << "the caption says how the curve was thinned";
  // The spike is an extreme of its pixel column, so it is drawn: the loss axis reaches 99.
  EXPECT_TRUE(Has(html, ">100</text>") || Has(html, ">90</text>") || Has(html, ">80</text>"));
}

TEST(Report, ThousandsOfEpochsFoldIntoOneRowAroundTheEpochsThatAreNotWhole) {
  test::ScratchDir dir;
  SyntheticRun run;
  run.steps = 20000;  // 8 steps an epoch: 2,500 epochs
  run.repeated_step = 10006;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), run));
  const std::string html = Render({dir.Join("a")});
  EXPECT_LT(html.size(), 300000u) << "one row per epoch would be over 400 KB";
  // Epoch 1250 (steps 10001..10008) repeats a sample and is listed; the whole ones around it fold.
  EXPECT_TRUE(Has(html, "<td>1250</td><td>10001..10008</td>")) << html.substr(html.find("Sample coverage"), 3000);
  EXPECT_TRUE(Has(html, "<td>3..1249 (1247 epochs)</td><td>25..10000</td>"));
  EXPECT_TRUE(Has(html, "<td>1251..2496 (1246 epochs)</td>"));
  EXPECT_TRUE(Has(html, "<td>2499</td>")) << "the last epochs are listed";
}

TEST(Report, ThousandsOfEpochsThatAreNotWholeAreListedUpToALimitAndTheRestCounted) {
  test::ScratchDir dir;
  SyntheticRun run;
  run.steps = 8000;  // 1,000 epochs, each leaving 8 of the 72 samples the header claims undrawn
  run.claimed_dataset_size = 72;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), run));
  const std::string html = Render({dir.Join("a")});
  EXPECT_LT(html.size(), 200000u);
  EXPECT_TRUE(Has(html, "more epochs with a repeat, a gap or an unknown count are not listed")) << html.size();
  EXPECT_TRUE(Has(html, "<td>999</td>")) << "the last epoch is listed";
}

TEST(Report, UnicodeAndMarkupInRunNamesAreShownEscaped) {
  test::ScratchDir dir;
  const std::string name = dir.Join("ран-①-🚀");
  ASSERT_OK(WriteSyntheticRun(name, {}));
  ASSERT_OK(WriteSyntheticRun(dir.Join("b"), {}));
  RunsReportOptions options;
  options.labels = {"", "<b>x</b>&\"'\xff\xfe"};
  const std::string html = Render({name, dir.Join("b")}, nullptr, options);
  EXPECT_TRUE(Has(html, "ран-①-🚀"));
  EXPECT_TRUE(Has(html, "&lt;b&gt;x&lt;/b&gt;&amp;&quot;&#39;\xEF\xBF\xBD\xEF\xBF\xBD"));
  EXPECT_FALSE(Has(html, "<b>x"));
  ExpectSelfContained(html);
}

TEST(Report, RunsOfOneNameAreToldApartByTheirPathsAndATrailingSlashIsNoName) {
  test::ScratchDir dir;
  ASSERT_OK(WriteSyntheticRun(dir.Join("x/run"), {}));
  ASSERT_OK(WriteSyntheticRun(dir.Join("y/run"), {}));
  ASSERT_OK(WriteSyntheticRun(dir.Join("ref"), {}));
  const std::string same = Render({dir.Join("x/run"), dir.Join("y/run")});
  EXPECT_TRUE(Has(same, "<h1>Lockstep report: " + dir.Join("x/run") + " vs " + dir.Join("y/run") + "</h1>"));
  const std::string slash = Render({dir.Join("ref/")});
  EXPECT_TRUE(Has(slash, "<h1>Lockstep report: ref</h1>"));
}

TEST(Report, ThinningKeepsEveryExtremeAndEveryNamedStep) {
  std::vector<Point> points;
  for (int64_t s = 1; s <= 100000; ++s) points.push_back({s, std::sin(static_cast<double>(s))});
  points[49999].value = 1e6;   // a spike
  points[70000].value = -1e6;  // a dip
  points[80000].value = std::numeric_limits<double>::quiet_NaN();
  const auto thinned = ThinPoints(points, 1, 100000, 600, {777});
  EXPECT_LE(thinned.size(), 600u * 4 + 4);
  const auto has = [&](int64_t step) {
    return std::any_of(thinned.begin(), thinned.end(), [&](const Point& p) { return p.step == step; });
  };
  EXPECT_TRUE(has(50000));
  EXPECT_TRUE(has(70001));
  EXPECT_TRUE(has(80001)) << "a NaN is kept: the chart marks it";
  EXPECT_TRUE(has(777));
  EXPECT_TRUE(has(1));
  EXPECT_TRUE(has(100000));
  EXPECT_TRUE(
      std::is_sorted(thinned.begin(), thinned.end(), [](const Point& a, const Point& b) { return a.step < b.step; }));
}

TEST(Report, EscapingReplacesInvalidUtf8AndControlCharacters) {
  EXPECT_EQ(HtmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
  EXPECT_EQ(HtmlEscape("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // an overlong NUL
  EXPECT_EQ(HtmlEscape(std::string("x\0y", 3)), "x\xEF\xBF\xBDy");
  EXPECT_EQ(HtmlEscape("\xE2\x91\xA0"), "\xE2\x91\xA0");          // ①
  EXPECT_EQ(HtmlEscape("\xE2\x91"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
}

TEST(Report, EightRunsAreStillToldApartAndALongTensorNameKeepsItsEnd) {
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(SeriesColor(i), SeriesColor(i + 7));
    EXPECT_NE(SeriesDash(i), SeriesDash(i + 7)) << "run " << i + 7 << " must not look like run " << i;
  }
  BarChart chart;
  chart.id = "bars";
  const std::string name = "base_model.model.model.layers.31.self_attn.q_proj.lora_A.default.weight";
  chart.bars.push_back({name, 3, "3 ulp", 1});
  const std::string svg = RenderBarChart(chart);
  EXPECT_TRUE(Has(svg, ">\u2026" + name.substr(name.size() - 40) + "</text>"));
  EXPECT_TRUE(Has(svg, "<title>" + name + "</title>")) << "the whole name is the hover text";
}

TEST(Report, ATableCellIsTextUnlessMadeAsMarkup) {
  HtmlTable t;
  t.rows.push_back({"<i>run</i>", RawCell("<i>ok</i>"), std::string("\x01raw:<b>")});
  const std::string html = t.Render();
  EXPECT_TRUE(Has(html, "<td>&lt;i&gt;run&lt;/i&gt;</td>"));
  EXPECT_TRUE(Has(html, "<td><i>ok</i></td>"));
  EXPECT_FALSE(Has(html, "<b>")) << "no text, whatever it begins with, becomes markup";
}

// --- The command ---------------------------------------------------------------------

TEST(ReportCli, ExitsZeroForIdenticalRunsAndOneForRunsThatPartAndWritesThePageEitherWay) {
  test::ScratchDir dir;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), {}));
  ASSERT_OK(WriteSyntheticRun(dir.Join("a2"), {}));
  SyntheticRun b;
  b.shuffled_step = 7;
  ASSERT_OK(WriteSyntheticRun(dir.Join("b"), b));
  auto r = Lockstep("report " + dir.Join("a") + " " + dir.Join("a2") + " --out " + dir.Join("same.html"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(test::FileExists(dir.Join("same.html")));
  r = Lockstep("report " + dir.Join("a") + " " + dir.Join("b") + " --label ref --label cand --out " +
               dir.Join("parted.html") + " --json");
  EXPECT_EQ(r.code, 1) << r.out;
  nlohmann::json j;
  ASSERT_OK(ParseJson(r.out, "stdout", &j));
  EXPECT_EQ(j["comparisons"], 1);
  EXPECT_EQ(j["identical"], 0);
  EXPECT_EQ(j["bytes"].get<uint64_t>(), test::FileSize(dir.Join("parted.html")));
  EXPECT_TRUE(Has(test::ReadAll(dir.Join("parted.html")), "cand parts at step 7: data"));
  r = Lockstep("report " + dir.Join("a") + " --out " + dir.Join("one.html"));
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(ReportCli, BadInputIsExitTwoNamingItAndLeavesAnOlderReportAlone) {
  test::ScratchDir dir;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), {}));
  test::WriteAll(dir.Join("old.html"), "OLD");
  const auto expect_refused = [&](const std::string& args, const std::string& named) {
    const auto r = Lockstep("report " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_TRUE(Has(r.out, named)) << r.out;
    EXPECT_EQ(test::ReadAll(dir.Join("old.html")), "OLD");
  };
  expect_refused(dir.Join("missing") + " --out " + dir.Join("old.html"), dir.Join("missing"));
  expect_refused(dir.Join("a") + " --out " + dir.Join("nodir/x.html"), "no such directory");
  expect_refused(dir.Join("a") + " --out " + dir.path(), "is a directory");
  expect_refused(dir.Join("a") + " --label x --label y --out " + dir.Join("old.html"), "2 --label for 1 runs");
  expect_refused("--out " + dir.Join("old.html"), "missing runs");
  // A damaged step log is named, and nothing is written.
  fs::copy(dir.Join("a"), dir.Join("damaged"), fs::copy_options::recursive);
  test::FlipByte(dir.Join("damaged/steps.jsonl.zst"), -20);
  expect_refused(dir.Join("damaged") + " --out " + dir.Join("old.html"), "damaged/steps.jsonl.zst");
}

TEST(ReportCli, AFullDiskFailsTheCommandAndKeepsTheOlderReportWhole) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  test::ScratchDir dir, disk;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), {}));
  ASSERT_EQ(::mount("tmpfs", disk.path().c_str(), "tmpfs", 0, "size=12k"), 0);
  test::WriteAll(disk.Join("r.html"), "OLD");
  const auto r = Lockstep("report " + dir.Join("a") + " --out " + disk.Join("r.html"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Has(r.out, disk.Join("r.html"))) << r.out;
  EXPECT_EQ(test::ReadAll(disk.Join("r.html")), "OLD");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(disk.path())) ++entries;
  EXPECT_EQ(entries, 1u) << "no temporary file is left behind";
  ::umount(disk.path().c_str());
}

// --- Real runs -----------------------------------------------------------------------

TEST(ReportRealRuns, AResumeThatForgetsItsRngIsDrawnWithItsCauseCheckpointAuditAndTensorDiff) {
  test::ScratchDir dir;
  const std::string common =
      " --max_steps 80 --save_steps 20 --logging_steps 10 --eval_strategy steps"
      " --eval_steps 20 --quiet";
  ASSERT_EQ(Lockstep("train --output_dir " + dir.Join("ref") + common).code, 0);
  ASSERT_EQ(Lockstep("train --output_dir " + dir.Join("resumed") + common + " --stop-after-step 30").code, 0);
  ASSERT_EQ(Lockstep("train --output_dir " + dir.Join("resumed") + common + " --resume --fault-inject rng").code, 0);
  const auto r = Lockstep("report " + dir.Join("ref") + " " + dir.Join("resumed") + " --out " + dir.Join("r.html"));
  EXPECT_EQ(r.code, 1) << r.out;
  const std::string html = test::ReadAll(dir.Join("r.html"));
  EXPECT_TRUE(Has(html, "resumed parts at step 31: rng")) << r.out;
  EXPECT_TRUE(Has(html, "resumed resumed after step 30 from checkpoint-30"));
  EXPECT_TRUE(Has(html, "checkpoint-80: max ULP per tensor"));
  EXPECT_TRUE(Has(html, " ulp ("));
  EXPECT_TRUE(Has(html, "eval loss"));
  EXPECT_TRUE(Has(html, "latest resumable checkpoint: checkpoint-80"));
  EXPECT_TRUE(Has(html, "lockstep replay"));
  ExpectSelfContained(html);
}

TEST(ReportRealRuns, HuggingFaceDirectoriesAreDrawnFromTheirLogHistory) {
  test::ScratchDir dir;
  for (const char* name : {"hf_full_run", "peft_lora_run", "deepspeed_zero2_run", "fsdp_run", "ddp_run"}) {
    ASSERT_EQ(
        test::RunCommand("tar xzf " + std::string(LOCKSTEP_FIXTURES_DIR) + "/real/" + name + ".tar.gz -C " + dir.path())
            .code,
        0);
    const std::string run = dir.Join(name);
    const auto r = Lockstep("report " + run + " " + run + " --out " + dir.Join(std::string(name) + ".html"));
    EXPECT_EQ(r.code, 0) << name << "\n" << r.out;
    const std::string html = test::ReadAll(dir.Join(std::string(name) + ".html"));
    EXPECT_TRUE(Has(html, "log_history")) << name;
    EXPECT_TRUE(Has(html, "IDENTICAL")) << name;
    EXPECT_TRUE(Has(html, "<svg")) << name;
    ExpectSelfContained(html);
  }
}

TEST(ReportRealRuns, VerifyResumeWritesItsTimeLineWithEveryVariantAndVerdict) {
  test::ScratchDir dir;
  const auto r = Lockstep(
      "verify-resume --max_steps 24 --save_steps 8 --interrupt-at 12 --crash-points 1 "
      "--fault-inject rng --quiet --output_dir " +
      dir.Join("work") + " --report " + dir.Join("v.html"));
  EXPECT_EQ(r.code, 1) << r.out;
  const std::string html = test::ReadAll(dir.Join("v.html"));
  EXPECT_TRUE(Has(html, "Time line"));
  EXPECT_TRUE(Has(html, "interrupt-12"));
  EXPECT_TRUE(Has(html, "crash-points"));
  EXPECT_TRUE(Has(html, "DIVERGED"));
  EXPECT_TRUE(Has(html, "FAULT INJECTED (testing only): rng"));
  EXPECT_TRUE(Has(html, "interrupt-12 parts at step 13: rng"));
  ExpectSelfContained(html);
  // A report that cannot be written is refused before any training.
  const auto bad = Lockstep("verify-resume --max_steps 4 --quiet --output_dir " + dir.Join("work2") + " --report " +
                            dir.Join("nodir/v.html"));
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_FALSE(test::FileExists(dir.Join("work2")));
}

}  // namespace
}  // namespace lockstep
