// Whether a candidate run is the reference run bit for bit, through the one run comparator
// (DiffRuns with no tolerance, as verify-resume and `lockstep diff` use it), for tests that
// train twice and expect the same run.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "diff/run_divergence.h"

namespace lockstep {
namespace test {

inline ::testing::AssertionResult SameRun(const std::string& reference, const std::string& candidate) {
  RunDiff d;
  const Status st = DiffRuns(reference, candidate, Tolerance(), &d);
  if (!st.ok()) return ::testing::AssertionFailure() << st.ToString();
  if (!d.compared_anything()) return ::testing::AssertionFailure() << "nothing was compared";
  if (!d.identical()) {
    return ::testing::AssertionFailure() << "not the same run: "
                                         << (d.first_divergence ? d.first_divergence->ToString() : "results differ");
  }
  return ::testing::AssertionSuccess();
}

}  // namespace test
}  // namespace lockstep
