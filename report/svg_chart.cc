#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "report/html.h"

namespace lockstep {
namespace {

// Okabe & Ito's palette (yellow left out: too faint on white), and a dash pattern each, so
// runs stay apart in grey print and for readers who cannot tell the hues apart.
const char* const kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
const char* const kDashes[] = {"", "7 3", "2 2", "9 3 2 3", "4 4", "1 3", "12 4"};
constexpr int kPaletteSize = sizeof(kColors) / sizeof(kColors[0]);

// A line chart's frame, in SVG user units.
constexpr int kWidth = 760, kHeight = 250;
constexpr int kLeft = 70, kRight = 16, kTop = 30, kBottom = 44;
constexpr int kPlotWidth = kWidth - kLeft - kRight, kPlotHeight = kHeight - kTop - kBottom;

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

// A coordinate in tenths as SVG path text: "12.3", "-4", with a separating space before it
// when `separate` and it does not begin with '-'.
std::string Tenths(int64_t tenths, bool separate = false) {
  const int64_t whole = std::llabs(tenths) / 10, fraction = std::llabs(tenths) % 10;
  std::string s = tenths < 0 ? "-" : (separate ? " " : "");
  s += std::to_string(whole);
  if (fraction != 0) s += "." + std::to_string(fraction);
  return s;
}

// The last `n` characters of `text` (UTF-8 aware), after "…" when it is longer.
std::string LastChars(const std::string& text, size_t n) {
  size_t count = 0, i = text.size();
  while (i > 0 && count < n) {
    --i;
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++count;
  }
  return i == 0 ? text : "\u2026" + text.substr(i);
}

// A step as an axis label: 950, 12k, 1.5M.
std::string StepLabel(double step) {
  char buf[32];
  if (std::fabs(step) >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%gM", step / 1e6);
  } else if (std::fabs(step) >= 1e4) {
    std::snprintf(buf, sizeof(buf), "%gk", step / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(std::llround(step)));
  }
  return buf;
}

std::string WithCommas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > (n < 0 ? 1 : 0); i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

// The y axis: a value's position, linear or log10.
struct YAxis {
  bool log = false;
  double lo = 0, hi = 1;                                 // in axis units (log10 of the value when log)
  double cap = std::numeric_limits<double>::infinity();  // values above it are off the top (focus_settled)
  bool Placeable(double v) const { return std::isfinite(v) && (!log || v > 0) && v <= cap; }
  double Y(double v) const {
    const double u = log ? std::log10(v) : v;
    return kTop + kPlotHeight * (1.0 - (u - lo) / (hi - lo));
  }
};

bool ChooseLog(const LineChart& chart, double min, double max) {
  if (chart.y_scale != LineChart::Scale::kAuto) return chart.y_scale == LineChart::Scale::kLog;
  return min > 0 && max / min >= 20;
}

YAxis MakeYAxis(const LineChart& chart, bool* any) {
  double min = std::numeric_limits<double>::infinity(), max = -min, min_positive = min;
  double settled_min = min, settled_max = -min;  // after the first 5% of the steps
  const double settled_from = chart.x_min + 0.05 * static_cast<double>(chart.x_max - chart.x_min);
  for (const auto& line : chart.lines) {
    for (const auto& p : line.points) {
      if (!std::isfinite(p.value)) continue;
      min = std::min(min, p.value);
      max = std::max(max, p.value);
      if (p.value > 0) min_positive = std::min(min_positive, p.value);
      if (static_cast<double>(p.step) >= settled_from) {
        settled_min = std::min(settled_min, p.value);
        settled_max = std::max(settled_max, p.value);
      }
    }
  }
  YAxis axis;
  *any = std::isfinite(min);
  if (!*any) return axis;
  if (chart.focus_settled && std::isfinite(settled_max) && max - settled_max > settled_max - settled_min) {
    axis.cap = settled_max + 0.06 * (settled_max - settled_min);
    max = axis.cap;
  }
  axis.log = ChooseLog(chart, min, max);
  if (axis.log) {
    if (!std::isfinite(min_positive)) return axis.log = false, *any = false, axis;
    const double lo = std::log10(min_positive), hi = std::log10(std::max(max, min_positive));
    const double pad = std::max(0.05 * (hi - lo), 0.15);
    axis.lo = lo - pad;
    axis.hi = hi + pad;
    return axis;
  }
  double pad = 0.06 * (max - min);
  if (pad == 0) pad = min == 0 ? 1 : std::fabs(min) * 0.05;
  axis.lo = min - pad;
  axis.hi = max + pad;
  return axis;
}

std::vector<double> LogTicks(const YAxis& axis) {
  std::vector<double> ticks;
  const int e0 = static_cast<int>(std::floor(axis.lo)), e1 = static_cast<int>(std::ceil(axis.hi));
  const bool decades_only = e1 - e0 >= 4;
  for (int e = e0; e <= e1; ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (decades_only && m != 1.0) continue;
      const double v = m * std::pow(10.0, e), u = std::log10(v);
      if (u >= axis.lo && u <= axis.hi) ticks.push_back(v);
    }
  }
  return ticks;
}

std::string AxisText(double x, double y, const std::string& text, const char* anchor, int size = 11) {
  return "<text x=\"" + Fixed(x) + "\" y=\"" + Fixed(y) + "\" font-size=\"" + std::to_string(size) +
         "\" text-anchor=\"" + anchor + "\">" + HtmlEscape(text) + "</text>";
}

std::string Frame(const LineChart& chart, const YAxis& axis, bool any, const std::function<double(double)>& x_of) {
  std::string s = AxisText(kLeft, 18, chart.title, "start", 14);
  s += "<rect x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kTop) + "\" width=\"" +
       std::to_string(kPlotWidth) + "\" height=\"" + std::to_string(kPlotHeight) +
       "\" fill=\"none\" stroke=\"#888\" stroke-width=\"1\"/>";
  for (double t : NiceTicks(static_cast<double>(chart.x_min), static_cast<double>(chart.x_max), 7)) {
    const double x = x_of(t);
    if (x < kLeft - 0.5 || x > kLeft + kPlotWidth + 0.5 || t != std::floor(t)) continue;
    s += "<line x1=\"" + Fixed(x) + "\" x2=\"" + Fixed(x) + "\" y1=\"" + std::to_string(kTop + kPlotHeight) +
         "\" y2=\"" + std::to_string(kTop + kPlotHeight + 4) + "\" stroke=\"#888\"/>";
    s += AxisText(x, kTop + kPlotHeight + 16, StepLabel(t), "middle");
  }
  s += AxisText(kLeft + kPlotWidth / 2.0, kHeight - 6, chart.x_label, "middle", 12);
  s += "<text transform=\"translate(14 " + Fixed(kTop + kPlotHeight / 2.0) +
       ") rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">" +
       HtmlEscape(chart.y_label + (axis.log && any ? " (log scale)" : "")) + "</text>";
  if (!any) {
    s += AxisText(kLeft + kPlotWidth / 2.0, kTop + kPlotHeight / 2.0, "no finite value to draw", "middle", 13);
    return s;
  }
  const std::vector<double> ticks = axis.log ? LogTicks(axis) : NiceTicks(axis.lo, axis.hi, 5);
  for (double t : ticks) {
    if (!axis.Placeable(t)) continue;
    const double y = axis.Y(t);
    if (y < kTop - 0.5 || y > kTop + kPlotHeight + 0.5) continue;
    s += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(kLeft + kPlotWidth) + "\" y1=\"" +
         Fixed(y) + "\" y2=\"" + Fixed(y) + "\" stroke=\"#e4e4e4\"/>";
    s += AxisText(kLeft - 6, y + 4, ShortNumber(t), "end");
  }
  return s;
}

// A small cross at (x, y): where a value the axis cannot place (NaN, an infinity) fell.
std::string Cross(double x, double y, const std::string& color) {
  return "<path d=\"M" + Fixed(x - 3) + " " + Fixed(y - 3) + "l6 6m0 -6l-6 6\" stroke=\"" + color +
         "\" stroke-width=\"1.6\"/>";
}

struct LineCounts {
  size_t drawn = 0;
  int64_t nan = 0, pos_inf = 0, neg_inf = 0, unplaced = 0;  // unplaced: <= 0 on a log axis
  int64_t above = 0;                                        // over the cap of focus_settled
};

std::string DrawLine(const ChartLine& line, const YAxis& axis, const std::function<double(double)>& x_of,
                     LineCounts* counts) {
  const std::string color = SeriesColor(line.style);
  std::string path, dots, crosses;
  bool pen_down = false;
  int64_t last_x = 0, last_y = 0;
  for (const auto& p : line.points) {
    const double x = x_of(static_cast<double>(p.step));
    if (!axis.Placeable(p.value)) {
      pen_down = false;
      const bool top = std::isnan(p.value) || p.value > 0;
      (std::isnan(p.value)   ? counts->nan
       : std::isinf(p.value) ? (p.value > 0 ? counts->pos_inf : counts->neg_inf)
       : p.value > axis.cap  ? counts->above
                             : counts->unplaced)++;
      crosses += Cross(x, top ? kTop + 4 : kTop + kPlotHeight - 4, color);
      continue;
    }
    const double y = axis.Y(p.value);
    if (line.dots) {
      dots += "<circle cx=\"" + Fixed(x) + "\" cy=\"" + Fixed(y) + "\" r=\"4\"/>";
    } else {
      // Relative moves between coordinates rounded to tenths: a third fewer bytes than
      // absolute ones, and no drift (each delta is taken between rounded positions).
      const int64_t tx = std::llround(x * 10), ty = std::llround(y * 10);
      path += pen_down ? "l" + Tenths(tx - last_x) + Tenths(ty - last_y, true) : "M" + Tenths(tx) + Tenths(ty, true);
      last_x = tx;
      last_y = ty;
      pen_down = true;
    }
  }
  counts->drawn = line.points.size();
  std::string s = "<g><title>" + HtmlEscape(line.label) + "</title>";
  if (!path.empty()) {
    s += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.6\"";
    if (!SeriesDash(line.style).empty()) s += " stroke-dasharray=\"" + SeriesDash(line.style) + "\"";
    s += " stroke-linejoin=\"round\"/>";
  }
  if (!dots.empty()) s += "<g fill=\"" + color + "\" stroke=\"#000\" stroke-width=\"1\">" + dots + "</g>";
  return s + crosses + "</g>";
}

std::string DrawMarks(const LineChart& chart, const std::function<double(double)>& x_of) {
  std::string s;
  int divergence_index = 0;
  int64_t last_checkpoint_column = std::numeric_limits<int64_t>::min();
  for (const auto& m : chart.marks) {
    const double x = x_of(static_cast<double>(m.step));
    const std::string color = m.style >= 0 ? SeriesColor(m.style) : "#444";
    const std::string title = "<title>" + HtmlEscape(m.label) + "</title>";
    switch (m.kind) {
      case ChartMark::Kind::kCheckpoint: {
        const auto column = static_cast<int64_t>(x);  // one triangle per pixel column
        if (column == last_checkpoint_column) break;
        last_checkpoint_column = column;
        const double y = kTop + kPlotHeight;
        s += "<path d=\"M" + Fixed(x) + " " + Fixed(y - 7) + "l4 7h-8z\" fill=\"" + color +
             "\" fill-opacity=\"0.75\">" + title + "</path>";
        break;
      }
      case ChartMark::Kind::kResume:
        s += "<line x1=\"" + Fixed(x) + "\" x2=\"" + Fixed(x) + "\" y1=\"" + std::to_string(kTop) + "\" y2=\"" +
             std::to_string(kTop + kPlotHeight) + "\" stroke=\"" + color +
             "\" stroke-width=\"1.2\" stroke-dasharray=\"3 3\">" + title + "</line>";
        s += "<text x=\"" + Fixed(x + 3) + "\" y=\"" + std::to_string(kTop + kPlotHeight - 10) +
             "\" font-size=\"10\" fill=\"" + color + "\">resume</text>";
        break;
      case ChartMark::Kind::kDivergence: {
        const bool left = x > kLeft + kPlotWidth * 0.6;
        const double ty = kTop + 13 + 13.0 * divergence_index++;
        s += "<line x1=\"" + Fixed(x) + "\" x2=\"" + Fixed(x) + "\" y1=\"" + std::to_string(kTop) + "\" y2=\"" +
             std::to_string(kTop + kPlotHeight) + "\" stroke=\"#000\" stroke-width=\"1.8\">" + title + "</line>";
        s += "<text x=\"" + Fixed(left ? x - 4 : x + 4) + "\" y=\"" + Fixed(ty) +
             "\" font-size=\"11\" font-weight=\"bold\" text-anchor=\"" + (left ? "end" : "start") +
             "\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">" + HtmlEscape(m.label) + "</text>";
        break;
      }
    }
  }
  return s;
}

std::string Caption(const LineChart& chart, const YAxis& axis, bool any, const std::vector<LineCounts>& counts,
                    const std::vector<size_t>& totals) {
  std::string c = HtmlEscape(chart.title) + (any ? (axis.log ? ", log scale." : ", linear scale.") : ".");
  for (size_t i = 0; i < chart.lines.size(); ++i) {
    const auto& n = counts[i];
    std::string parts;
    if (n.drawn < totals[i]) {
      parts += WithCommas(static_cast<int64_t>(totals[i])) + " points, " + WithCommas(static_cast<int64_t>(n.drawn)) +
               " drawn (each pixel column's first, last, lowest and highest)";
    }
    const auto add = [&](int64_t k, const char* what) {
      if (k > 0) parts += std::string(parts.empty() ? "" : "; ") + WithCommas(k) + " " + what;
    };
    add(n.nan, "NaN (× at the top)");
    add(n.pos_inf, "+inf (× at the top)");
    add(n.neg_inf, "-inf (× at the bottom)");
    add(n.unplaced, "≤ 0, off the log scale (× at the bottom)");
    add(n.above, "above the axis, which fits the steps after the first 5% (× at the top)");
    if (!parts.empty()) c += " " + HtmlEscape(chart.lines[i].label) + ": " + parts + ".";
  }
  return c;
}

}  // namespace

std::string SeriesColor(int style) { return kColors[((style % kPaletteSize) + kPaletteSize) % kPaletteSize]; }
// Past the palette's length the dash patterns shift by one, so run 7 is not run 0 again.
std::string SeriesDash(int style) {
  const int s = std::max(style, 0);
  return kDashes[(s + s / kPaletteSize) % kPaletteSize];
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  std::vector<double> out;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) {
    if (std::isfinite(lo)) out.push_back(lo);
    return out;
  }
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
    if (out.size() > 100) break;
  }
  return out;
}

std::string SvgOpen(const std::string& id, int width, int height, const std::string& title, const std::string& desc) {
  // Inline SVG in HTML needs no namespace: the page names no address at all.
  return "<svg viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
         "\" role=\"img\" aria-labelledby=\"" + id + "-t " + id + "-d\"><title id=\"" + id + "-t\">" +
         HtmlEscape(title) + "</title><desc id=\"" + id + "-d\">" + HtmlEscape(desc) + "</desc>";
}

std::string RenderLineChart(const LineChart& chart) {
  bool any = false;
  const YAxis axis = MakeYAxis(chart, &any);
  const double span = std::max<double>(1.0, static_cast<double>(chart.x_max - chart.x_min));
  const auto x_of = [&](double step) {
    if (chart.x_max == chart.x_min) return kLeft + kPlotWidth / 2.0;
    return kLeft + kPlotWidth * (step - static_cast<double>(chart.x_min)) / span;
  };
  std::vector<int64_t> keep;
  for (const auto& m : chart.marks) {
    if (m.kind != ChartMark::Kind::kCheckpoint) keep.push_back(m.step);
  }
  std::string body = Frame(chart, axis, any, x_of);
  std::vector<LineCounts> counts(chart.lines.size());
  std::vector<size_t> totals;
  for (size_t i = 0; i < chart.lines.size(); ++i) {
    ChartLine thinned = chart.lines[i];
    totals.push_back(thinned.points.size());
    thinned.points = ThinPoints(thinned.points, chart.x_min, chart.x_max, kPlotWidth, keep);
    thinned.dots = thinned.dots || thinned.points.size() == 1;  // one point draws no line
    if (any) body += DrawLine(thinned, axis, x_of, &counts[i]);
  }
  body += DrawMarks(chart, x_of);
  const std::string caption = Caption(chart, axis, any, counts, totals);
  std::string desc = chart.y_label + " by " + chart.x_label + " for";
  for (const auto& line : chart.lines) desc += " " + line.label + ";";
  return "<figure>" + SvgOpen(chart.id, kWidth, kHeight, chart.title, desc) + body + "</svg><figcaption>" + caption +
         "</figcaption></figure>\n";
}

std::string RenderBarChart(const BarChart& chart) {
  constexpr int kRow = 18, kLabelWidth = 250, kTextWidth = 110;
  const int height = kTop + kRow * static_cast<int>(chart.bars.size()) + kBottom;
  const int bar_width = kWidth - kLabelWidth - kTextWidth - kRight;
  // On the log scale a value v >= 1 is 1 + log10(v) long: one unit, then a unit per decade.
  const auto length = [&](double v) { return chart.log_x ? (v >= 1 ? 1 + std::log10(v) : 0.0) : std::max(0.0, v); };
  double max = 0;
  for (const auto& b : chart.bars) {
    if (std::isfinite(b.value)) max = std::max(max, length(b.value));
  }
  std::string s = SvgOpen(chart.id, kWidth, height, chart.title, chart.x_label + " per row");
  s += AxisText(8, 18, chart.title, "start", 14);
  for (size_t i = 0; i < chart.bars.size(); ++i) {
    const Bar& b = chart.bars[i];
    const double y = kTop + kRow * static_cast<double>(i);
    // A long name keeps its end, the part that tells layers apart; the whole is the hover text.
    s += "<g><title>" + HtmlEscape(b.label) + "</title>" +
         AxisText(kLabelWidth - 6, y + 13, LastChars(b.label, 40), "end") + "</g>";
    const double w = max > 0 ? bar_width * (std::isfinite(b.value) ? length(b.value) / max : 1.0) : 0;
    if (w > 0) {
      s += "<rect x=\"" + std::to_string(kLabelWidth) + "\" y=\"" + Fixed(y + 3) + "\" width=\"" + Fixed(w) +
           "\" height=\"" + std::to_string(kRow - 6) + "\" fill=\"" + SeriesColor(b.style) + "\"><title>" +
           HtmlEscape(b.label + ": " + b.text) + "</title></rect>";
    }
    s += AxisText(kLabelWidth + w + 6, y + 13, b.text, "start");
  }
  const double axis_y = kTop + kRow * static_cast<double>(chart.bars.size()) + 4;
  s += "<line x1=\"" + std::to_string(kLabelWidth) + "\" x2=\"" + std::to_string(kLabelWidth + bar_width) + "\" y1=\"" +
       Fixed(axis_y) + "\" y2=\"" + Fixed(axis_y) + "\" stroke=\"#888\"/>";
  if (chart.log_x && max > 0) {
    for (int e = 0; e + 1 <= static_cast<int>(std::floor(max)); e += std::max(1, static_cast<int>(max) / 8)) {
      const double x = kLabelWidth + bar_width * (1 + e) / max;
      s += AxisText(x, axis_y + 14,
                    e < 3 ? std::to_string(static_cast<int>(std::pow(10, e))) : "1e" + std::to_string(e), "middle", 10);
    }
  }
  s += AxisText(kLabelWidth + bar_width / 2.0, axis_y + 32, chart.x_label + (chart.log_x ? " (log scale)" : ""),
                "middle", 12);
  return "<figure>" + s + "</svg></figure>\n";
}

std::string RenderLegend(const std::vector<std::string>& labels, const std::vector<int>& styles) {
  std::string s = "<div class=\"legend\">";
  for (size_t i = 0; i < labels.size(); ++i) {
    const int style = i < styles.size() ? styles[i] : static_cast<int>(i);
    s += "<span><svg viewBox=\"0 0 36 12\" aria-hidden=\"true\"><line x1=\"1\" y1=\"6\" x2=\"35\" y2=\"6\" stroke=\"" +
         SeriesColor(style) + "\" stroke-width=\"2.4\"" +
         (SeriesDash(style).empty() ? "" : " stroke-dasharray=\"" + SeriesDash(style) + "\"") + "/></svg>" +
         HtmlEscape(labels[i]) + "</span>";
  }
  return s + "</div>\n";
}

}  // namespace lockstep
