// Charts as inline SVG: line charts by step (loss, lr, grad norm, a delta), horizontal bar
// charts (max ULP per tensor) and the shared pieces (palette, frame, legend). Every chart
// has a <title> and <desc>, labelled axes, and tells its runs apart by colour (the Okabe-Ito
// palette, distinguishable with colour blindness) and by dash pattern (in grey print).
// No LibTorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "report/thin.h"

namespace lockstep {

// Run i's colour and dash pattern ("" for solid); they cycle after the palette's length.
std::string SeriesColor(int style);
std::string SeriesDash(int style);

// One curve. `dots`: draw each point as a dot (eval loss, a few points), not a line.
struct ChartLine {
  std::string label;
  std::vector<Point> points;  // by step
  int style = 0;
  bool dots = false;
};

// Something that happened at a step, drawn across the chart (resume, divergence) or on its
// step axis (checkpoint). `label` is shown beside a divergence and as the hover text.
struct ChartMark {
  enum class Kind { kCheckpoint, kResume, kDivergence };
  Kind kind = Kind::kCheckpoint;
  int64_t step = 0;
  std::string label;
  int style = -1;  // the run it belongs to (its colour), -1 for none
};

struct LineChart {
  std::string id;  // unique within the page
  std::string title, y_label, x_label = "step";
  std::vector<ChartLine> lines;
  std::vector<ChartMark> marks;
  int64_t x_min = 0, x_max = 0;  // every chart of a page shares its runs' step range
  enum class Scale { kAuto, kLinear, kLog } y_scale = Scale::kAuto;
  // The y range fits the values after the first 5% of the steps when the first ones (a loss
  // that starts high) would squash the rest into less than half the height; those above it
  // are crossed at the top edge and counted in the caption.
  bool focus_settled = false;
};

// A <figure> holding the chart and a caption that says what is drawn: the scale, how many
// points each line was thinned to (thin.h), and the values a chart cannot place (NaN and
// infinities: marked with a cross at the top or bottom edge, and counted). kAuto draws a
// log scale when every value is positive and they span 20x or more.
std::string RenderLineChart(const LineChart& chart);

// One bar of a horizontal bar chart.
struct Bar {
  std::string label;  // "fc1.weight"
  double value = 0;   // its length; 0 draws none
  std::string text;   // beside the bar: "3 ulp", "equal"
  int style = 0;
};

struct BarChart {
  std::string id, title, x_label;
  std::vector<Bar> bars;
  bool log_x = true;  // 0 draws no bar; v >= 1 draws 1 + log10(v) units (1 is one unit long)
};

std::string RenderBarChart(const BarChart& chart);

// A legend in HTML: one swatch (colour and dash) per label, style i for label i.
std::string RenderLegend(const std::vector<std::string>& labels, const std::vector<int>& styles);

// The opening <svg> tag of a chart `width` x `height` user units wide, with role="img", its
// <title> and <desc> (escaped), linked by aria-labelledby through `id`.
std::string SvgOpen(const std::string& id, int width, int height, const std::string& title, const std::string& desc);

// Nice tick values covering [lo, hi]: about `target` of them at 1, 2 or 5 times a power of 10.
std::vector<double> NiceTicks(double lo, double hi, int target);

}  // namespace lockstep
