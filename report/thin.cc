#include "report/thin.h"

#include <algorithm>
#include <cmath>

namespace lockstep {
namespace {

// 0 finite, 1 NaN, 2 +inf, 3 -inf.
int Kind(double v) { return std::isnan(v) ? 1 : std::isinf(v) ? (v > 0 ? 2 : 3) : 0; }

}  // namespace

std::vector<Point> ThinPoints(const std::vector<Point>& points, int64_t x_min, int64_t x_max, int columns,
                              const std::vector<int64_t>& keep) {
  if (columns < 1 || points.size() <= static_cast<size_t>(columns) * 4) return points;
  const double span = std::max<double>(1.0, static_cast<double>(x_max - x_min));
  const auto column_of = [&](int64_t step) {
    const double c = std::floor((static_cast<double>(step - x_min) / span) * columns);
    return static_cast<int64_t>(std::clamp(c, -1.0, static_cast<double>(columns)));  // -1, columns: off the chart
  };
  std::vector<int64_t> kept_steps = keep;
  std::sort(kept_steps.begin(), kept_steps.end());
  std::vector<char> chosen(points.size(), 0);
  size_t begin = 0;
  while (begin < points.size()) {
    const int64_t column = column_of(points[begin].step);
    size_t end = begin;
    size_t lo = points.size(), hi = points.size(), first_finite = points.size(), last_finite = points.size();
    bool kind_seen[4] = {false, false, false, false};
    for (; end < points.size() && column_of(points[end].step) == column; ++end) {
      const double v = points[end].value;
      const int kind = Kind(v);
      if (kind != 0) {
        if (!kind_seen[kind]) chosen[end] = 1;
        kind_seen[kind] = true;
        continue;
      }
      if (first_finite == points.size()) first_finite = end;
      last_finite = end;
      if (lo == points.size() || v < points[lo].value) lo = end;
      if (hi == points.size() || v > points[hi].value) hi = end;
      if (std::binary_search(kept_steps.begin(), kept_steps.end(), points[end].step)) chosen[end] = 1;
    }
    for (size_t i : {first_finite, last_finite, lo, hi}) {
      if (i < points.size()) chosen[i] = 1;
    }
    // The first and last point of the column, whatever they are, keep the line's breaks
    // (a NaN between two finite values) where they were.
    chosen[begin] = chosen[end - 1] = 1;
    begin = end;
  }
  std::vector<Point> out;
  for (size_t i = 0; i < points.size(); ++i) {
    if (chosen[i]) out.push_back(points[i]);
  }
  return out;
}

}  // namespace lockstep
