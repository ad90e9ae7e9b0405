// Thinning a curve for a chart without hiding anything the chart could show: per pixel
// column the first, last, lowest and highest point (the M4 rule: the polyline drawn from
// them covers the same pixels as the polyline of every point), every step a caller names
// (a divergence, a resume), and per column one point of each non-finite kind. 1,000,000
// steps become at most a few thousand points. No LibTorch here.
#pragma once

#include <cstdint>
#include <vector>

namespace lockstep {

struct Point {
  int64_t step = 0;
  double value = 0;
};

// The points of `points` (sorted by step) to draw across `columns` pixel columns spanning
// steps [x_min, x_max], in their order: see above. `keep` lists steps whose points are
// always kept. Fewer points than 4 per column are returned unchanged.
std::vector<Point> ThinPoints(const std::vector<Point>& points, int64_t x_min, int64_t x_max, int columns,
                              const std::vector<int64_t>& keep);

}  // namespace lockstep
