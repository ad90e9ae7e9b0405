// XXH3-128 as the manifests use it: the streaming path (AVX2 where the CPU has it) gives
// the same digest as the one-shot path (baseline SIMD), for any chunking; file hashing
// reports its progress chunk by chunk.
#include "formats/checksum.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace lockstep {

TEST(Checksum, KnownDigestOfNothing) {
  EXPECT_EQ(Xxh3Hex("", 0), "99aa06d3014798d86001c324468d497f");  // XXH128 of empty input
  Xxh3Stream s;
  EXPECT_EQ(s.HexDigest(), "99aa06d3014798d86001c324468d497f");
}

TEST(Checksum, StreamingMatchesOneShotForAnyChunking) {
  std::mt19937_64 gen(7);
  std::string data(3 * 1024 * 1024 + 17, '\0');
  for (auto& c : data) c = static_cast<char>(gen());
  const std::string want = Xxh3Hex(data.data(), data.size());
  for (size_t chunk : {1u, 63u, 64u, 1000u, 65536u, 1u << 20}) {
    Xxh3Stream s;
    for (size_t at = 0; at < data.size(); at += chunk) s.Update(data.data() + at, std::min(chunk, data.size() - at));
    EXPECT_EQ(s.HexDigest(), want) << "chunk " << chunk;
  }
  data[12345] ^= 1;
  EXPECT_NE(Xxh3Hex(data.data(), data.size()), want);
}

TEST(Checksum, FileHashReportsEveryChunk) {
  test::ScratchDir dir;
  const std::string data(1000000, 'x');
  test::WriteAll(dir.Join("f"), data);
  std::string hex;
  uint64_t size = 0, reported = 0;
  int calls = 0;
  ASSERT_TRUE(FileXxh3Hex(dir.Join("f"), &hex, &size, [&](uint64_t n) { reported += n, ++calls; }).ok());
  EXPECT_EQ(hex, Xxh3Hex(data.data(), data.size()));
  EXPECT_EQ(size, data.size());
  EXPECT_EQ(reported, data.size());
  EXPECT_EQ(calls, 4);  // 256 KiB chunks
  Status st = FileXxh3Hex(dir.Join("missing"), &hex);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing: cannot open"), std::string::npos) << st.message();
}

// Spans queued for the hash's thread and bytes hashed in place, interleaved, give the
// digest of the bytes in the order given, however the thread is scheduled; a buffer
// hashed in place may be reused at once.
TEST(Checksum, BackgroundHashKeepsTheOrderOfItsSpans) {
  std::vector<std::string> big;
  for (int i = 0; i < 40; ++i) big.push_back(std::string(300000 + i, static_cast<char>('a' + i % 26)));
  std::string all, reused;
  BackgroundXxh3 hash;
  for (int i = 0; i < 40; ++i) {
    hash.Add(big[i].data(), big[i].size());
    all += big[i];
    reused = "small piece " + std::to_string(i);  // overwritten right after
    hash.Update(reused.data(), reused.size());
    all += reused;
  }
  EXPECT_EQ(hash.HexDigest(), Xxh3Hex(all.data(), all.size()));
  BackgroundXxh3 none;
  EXPECT_EQ(none.HexDigest(), Xxh3Hex("", 0));
}

}  // namespace lockstep
