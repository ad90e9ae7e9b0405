#include "formats/base64.h"

#include <gtest/gtest.h>

namespace lockstep {

TEST(Base64, RoundTripsEveryLengthModuloThree) {
  for (size_t n = 0; n < 20; ++n) {
    std::vector<uint8_t> data(n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 37 + 11);
    std::vector<uint8_t> back;
    ASSERT_TRUE(Base64Decode(Base64Encode(data), &back)) << n;
    EXPECT_EQ(back, data) << n;
  }
  EXPECT_EQ(Base64Encode(reinterpret_cast<const uint8_t*>("foob"), 4), "Zm9vYg==");
}

TEST(Base64, RejectsMalformedText) {
  std::vector<uint8_t> out;
  EXPECT_FALSE(Base64Decode("Zm9", &out));   // length not a multiple of 4
  EXPECT_FALSE(Base64Decode("Zm9*", &out));  // bad character
  EXPECT_FALSE(Base64Decode("Z=9v", &out));  // padding in the middle
}

}  // namespace lockstep
