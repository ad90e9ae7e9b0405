// lockstep report's pages as a browser draws them: Debian's headless Chromium (installed by
// scripts/install-deps.sh) renders them to PNG, read back with libpng. A page is not blank
// and shows its runs' colours; a chart's rendering matches a stored expectation, compared
// on a coarse grid of ink so font hinting and anti-aliasing cannot make it flake.
//
// LOCKSTEP_UPDATE_RENDER_EXPECTATION=1 rewrites the expectation (tests/fixtures/report/).
#include <fcntl.h>
#include <png.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include <gtest/gtest.h>

#include "bench/synthetic_run.h"
#include "process/spawn.h"
#include "report/html.h"
#include "report/report.h"
#include "report/svg_chart.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

const std::string kExpectation = std::string(LOCKSTEP_FIXTURES_DIR) + "/report/loss_chart_ink.pgm";
constexpr int kCell = 10;  // the grid the chart is compared on: 10 x 10 pixel cells

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* At(int x, int y) const { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
};

// Chromium draws `html` into a `width` x `height` PNG, read back as RGB.
void Screenshot(const test::ScratchDir& dir, const std::string& html, int width, int height, Image* out) {
  test::WriteAll(dir.Join("page.html"), html);
  const std::vector<std::string> argv = {"timeout",
                                         "120",
                                         "chromium",
                                         "--headless",
                                         "--no-sandbox",
                                         "--disable-gpu",
                                         "--disable-background-networking",
                                         "--hide-scrollbars",
                                         "--force-device-scale-factor=1",
                                         "--user-data-dir=" + dir.Join("profile"),
                                         "--window-size=" + std::to_string(width) + "," + std::to_string(height),
                                         "--screenshot=" + dir.Join("page.png"),
                                         "file://" + dir.Join("page.html")};
  SpawnOptions options;
  options.search_path = true;
  options.Open(1, dir.Join("chromium.log"), O_WRONLY | O_CREAT | O_TRUNC).Dup(2, 1);
  const int code = SpawnAndWait(argv, options);
  ASSERT_EQ(code, 0) << "chromium failed (scripts/install-deps.sh installs it):\n"
                     << test::ReadAll(dir.Join("chromium.log"));
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&image, dir.Join("page.png").c_str())) << image.message;
  image.format = PNG_FORMAT_RGB;
  out->width = static_cast<int>(image.width);
  out->height = static_cast<int>(image.height);
  out->rgb.resize(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, out->rgb.data(), 0, nullptr)) << image.message;
}

// How far a pixel is from white, 0..1.
double Ink(const uint8_t* p) { return 1.0 - (p[0] + p[1] + p[2]) / (3.0 * 255.0); }

bool Near(const uint8_t* p, int r, int g, int b) {
  return std::abs(p[0] - r) < 40 && std::abs(p[1] - g) < 40 && std::abs(p[2] - b) < 40;
}

// Mean ink per kCell x kCell cell, as 0..255.
std::vector<int> InkGrid(const Image& img, int* columns, int* rows) {
  *columns = img.width / kCell;
  *rows = img.height / kCell;
  std::vector<int> grid;
  for (int r = 0; r < *rows; ++r) {
    for (int c = 0; c < *columns; ++c) {
      double sum = 0;
      for (int y = r * kCell; y < (r + 1) * kCell; ++y) {
        for (int x = c * kCell; x < (c + 1) * kCell; ++x) sum += Ink(img.At(x, y));
      }
      grid.push_back(static_cast<int>(std::lround(255.0 * sum / (kCell * kCell))));
    }
  }
  return grid;
}

// A fixed chart: two runs of 300 steps, one parting at step 200, a NaN, checkpoints, a resume.
std::string FixedChartPage() {
  LineChart chart;
  chart.id = "fixed";
  chart.title = "Loss";
  chart.y_label = "loss";
  chart.x_min = 1;
  chart.x_max = 300;
  ChartLine a{"a", {}, 0, false}, b{"b", {}, 1, false};
  for (int64_t s = 1; s <= 300; ++s) {
    a.points.push_back({s, SyntheticLoss(s)});
    b.points.push_back({s, s < 200 ? SyntheticLoss(s) : SyntheticLoss(s) + 0.2 * std::sin(s * 0.1)});
  }
  b.points[250].value = std::numeric_limits<double>::quiet_NaN();
  chart.lines = {a, b};
  for (int64_t s : {100, 200, 300}) chart.marks.push_back({ChartMark::Kind::kCheckpoint, s, "checkpoint", 0});
  chart.marks.push_back({ChartMark::Kind::kResume, 150, "b resumed", 1});
  chart.marks.push_back({ChartMark::Kind::kDivergence, 200, "b parts at step 200: rng", 1});
  return HtmlPage("chart", "<div style=\"width:760px\">" + RenderLineChart(chart) + "</div>");
}

TEST(ReportRender, APageOfTwoRunsIsDrawnWithBothRunsColoursAndTheDivergenceLine) {
  test::ScratchDir dir;
  ASSERT_OK(WriteSyntheticRun(dir.Join("a"), {}));
  SyntheticRun b;
  b.shuffled_step = 40;
  ASSERT_OK(WriteSyntheticRun(dir.Join("b"), b));
  std::string html;
  RunsReportSummary summary;
  ASSERT_OK(RenderRunsReport({dir.Join("a"), dir.Join("b")}, RunsReportOptions(), &html, &summary));
  Image img;
  Screenshot(dir, html, 1000, 1800, &img);
  ASSERT_EQ(img.width, 1000);
  int64_t inked = 0, blue = 0, vermillion = 0, black = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = img.At(x, y);
      inked += Ink(p) > 0.1;
      blue += Near(p, 0x00, 0x72, 0xB2);
      vermillion += Near(p, 0xD5, 0x5E, 0x00);
      black += p[0] < 30 && p[1] < 30 && p[2] < 30;
    }
  }
  const double share = static_cast<double>(inked) / (static_cast<double>(img.width) * img.height);
  EXPECT_GT(share, 0.02) << "the page is blank";
  EXPECT_GT(blue, 300) << "run a's curves (#0072B2) are not drawn";
  EXPECT_GT(vermillion, 300) << "run b's curves (#D55E00) are not drawn";
  EXPECT_GT(black, 500) << "no text or divergence line";
}

TEST(ReportRender, AChartMatchesItsStoredExpectationOnACoarseGrid) {
  test::ScratchDir dir;
  Image img;
  Screenshot(dir, FixedChartPage(), 800, 330, &img);
  // The chart region: the figure, below the page's top margin.
  int columns = 0, rows = 0;
  const std::vector<int> grid = InkGrid(img, &columns, &rows);
  if (std::getenv("LOCKSTEP_UPDATE_RENDER_EXPECTATION") != nullptr) {
    std::ofstream f(kExpectation);
    f << "P2\n" << columns << " " << rows << "\n255\n";
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < columns; ++c)
        f << grid[static_cast<size_t>(r * columns + c)] << (c + 1 < columns ? " " : "\n");
    }
    GTEST_SKIP() << "wrote " << kExpectation;
  }
  std::istringstream in(test::ReadAll(kExpectation));
  std::string magic;
  int want_columns = 0, want_rows = 0, max = 0;
  in >> magic >> want_columns >> want_rows >> max;
  ASSERT_EQ(magic, "P2") << kExpectation;
  ASSERT_EQ(want_columns, columns);
  ASSERT_EQ(want_rows, rows);
  double total = 0;
  int far = 0;
  for (int v : grid) {
    int want = 0;
    in >> want;
    const int d = std::abs(v - want);
    total += d / 255.0;
    far += d > 64;
  }
  const double mean = total / static_cast<double>(grid.size());
  // Loose: text may shift by a pixel and lines anti-alias differently; a missing or moved
  // curve, axis or label moves far more cells than this.
  EXPECT_LT(mean, 0.02) << "mean ink difference per cell";
  EXPECT_LT(far, static_cast<int>(grid.size()) / 50) << "cells whose ink differs by more than a quarter";
  // And the comparison can fail: the same chart without its second run does not pass.
  std::string without_b = FixedChartPage();
  without_b.replace(without_b.find("stroke=\"#D55E00\""), 16, "stroke=\"#ffffff\"");
  Image other;
  Screenshot(dir, without_b, 800, 330, &other);
  int oc = 0, orows = 0;
  const std::vector<int> other_grid = InkGrid(other, &oc, &orows);
  double other_total = 0;
  for (size_t i = 0; i < grid.size(); ++i) other_total += std::abs(other_grid[i] - grid[i]) / 255.0;
  EXPECT_GT(other_total, total * 2 + 1.0) << "removing a curve must change the grid more than rendering noise";
}

}  // namespace
}  // namespace lockstep
