#include "formats/step_log.h"
#include "formats/step_record.h"

#include <cmath>

#include <gtest/gtest.h>
#include <zstd.h>

#include "tests/test_util.h"

namespace lockstep {
namespace {

// Writes a log of `n` records, 4 per frame.
void WriteLog(const std::string& path, int n) {
  std::unique_ptr<StepLogWriter> w;
  StepLogOptions options;
  options.records_per_frame = 4;
  ASSERT_TRUE(StepLogWriter::Create(path, {{"run", "test"}}, options, &w).ok());
  for (int i = 1; i <= n; ++i) ASSERT_TRUE(w->Append({{"step", i}, {"loss", 1.0 / i}}).ok());
  ASSERT_TRUE(w->Close().ok());
}

}  // namespace

TEST(StepLog, RoundTripsHeaderAndRecords) {
  test::ScratchDir dir;
  WriteLog(dir.Join("log.zst"), 10);
  StepLogContents c;
  ASSERT_TRUE(ReadStepLog(dir.Join("log.zst"), &c).ok());
  EXPECT_EQ(c.header["run"], "test");
  EXPECT_EQ(c.header["magic"], "LOCKSTEP-STEPLOG");
  ASSERT_EQ(c.records.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(StepRecordJson(c.records[i])["step"], i + 1);
  EXPECT_FALSE(c.truncated_tail);
  EXPECT_EQ(c.frame_ends.size(), 1u + 3u);  // header + frames of 4, 4, 2
  EXPECT_EQ(c.valid_bytes, c.file_bytes);
}

// The training loop hands RNG states over raw; the encoder thread stores their digests. The
// figures a checkpoint takes (size, last frame, digest) wait for the encoder, so they are
// those of the bytes on disk, and events keep their place among the steps.
TEST(StepLog, RawStatesAreStoredAsDigestsAndFiguresWaitForTheEncoder) {
  test::ScratchDir dir;
  std::unique_ptr<StepLogWriter> w;
  StepLogOptions options;
  options.records_per_frame = 4;
  ASSERT_OK(StepLogWriter::Create(dir.Join("log.zst"), {{"run", "test"}}, options, &w));
  const std::vector<uint8_t> state(5056, 7);
  for (int i = 1; i <= 9; ++i) {
    ASSERT_OK(w->Append({{"step", i}, {"rng", {{"cpu", nlohmann::json::binary(state)}}}}));
    if (i == 5) ASSERT_OK(w->AppendEvent("resume", {{"at", 5}}));
  }
  ASSERT_OK(w->Flush(/*sync=*/true));
  const uint64_t size = w->bytes_written();
  const std::string digest = w->digest();
  EXPECT_EQ(size, test::FileSize(dir.Join("log.zst")));
  std::string on_disk;
  ASSERT_OK(FileXxh3Hex(dir.Join("log.zst"), &on_disk));
  EXPECT_EQ(digest, on_disk);
  ASSERT_OK(w->Close());
  StepLogContents c;
  ASSERT_OK(ReadStepLog(dir.Join("log.zst"), &c));
  ASSERT_EQ(c.records.size(), 9u);
  EXPECT_EQ(StepRecordJson(c.records[0])["rng"]["cpu"]["size"], 5056);
  EXPECT_EQ(StepRecordJson(c.records[0])["rng"]["cpu"]["xxh3_128"], Xxh3Hex(state.data(), state.size()));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].steps_before, 5u);
}

// A typed record is made JSON by the encoder, off the loop: the log's bytes are those of
// the record appended as StepRecordJson, events in place among the steps.
TEST(StepLog, ATypedRecordWritesTheBytesOfItsJson) {
  test::ScratchDir dir;
  const auto record = [](int step) {
    StepRecord r;
    r.step = step;
    r.batches = {{3 * step, 3 * step + 1}, {7}};
    r.loss = 1.0f / static_cast<float>(step);
    r.lr = 1e-3;
    r.grad_norm = 0.25f;
    r.epoch = step / 10.0;
    r.sampler = SamplerPosition{0, step, 2 * step};
    r.rng = {{"cpu", GeneratorStateOf(std::vector<uint8_t>(5056, static_cast<uint8_t>(step)), step == 2)}};
    r.wall_time = step * 0.5;
    return r;
  };
  for (const bool typed : {false, true}) {
    std::unique_ptr<StepLogWriter> w;
    ASSERT_OK(StepLogWriter::Create(dir.Join(typed ? "typed.zst" : "json.zst"), {{"run", "test"}}, {}, &w));
    for (int i = 1; i <= 5; ++i) {
      ASSERT_OK(typed ? w->Append(record(i)) : w->Append(StepRecordJson(record(i))));
      if (i == 3) ASSERT_OK(w->AppendEvent("resume", {{"at", 3}}));
    }
    ASSERT_OK(w->Close());
  }
  EXPECT_EQ(test::ReadAll(dir.Join("typed.zst")), test::ReadAll(dir.Join("json.zst")));
  StepLogContents c;
  ASSERT_OK(ReadStepLog(dir.Join("typed.zst"), &c));
  ASSERT_EQ(c.records.size(), 5u);
  EXPECT_EQ(StepRecordJson(c.records[4])["batches"], nlohmann::json::parse("[[15, 16], [7]]"));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].steps_before, 3u);
}

TEST(StepLog, TruncatedLastFrameIsAcceptedAndReported) {
  test::ScratchDir dir;
  WriteLog(dir.Join("log.zst"), 10);
  StepLogContents full;
  ASSERT_TRUE(ReadStepLog(dir.Join("log.zst"), &full).ok());
  const uint64_t last_frame = full.frame_ends.back() - full.frame_ends[full.frame_ends.size() - 2];
  for (uint64_t cut = 1; cut < last_frame; cut += 7) {
    test::ScratchDir copy;
    test::WriteAll(copy.Join("log.zst"), test::ReadAll(dir.Join("log.zst")));
    test::ShrinkFile(copy.Join("log.zst"), cut);
    StepLogContents c;
    Status st = ReadStepLog(copy.Join("log.zst"), &c);
    ASSERT_TRUE(st.ok()) << "cut " << cut << ": " << st.ToString();
    EXPECT_TRUE(c.truncated_tail) << cut;
    EXPECT_EQ(c.records.size(), 8u) << cut;  // the last frame (records 9, 10) is lost
    EXPECT_EQ(c.valid_bytes, full.frame_ends[full.frame_ends.size() - 2]);
    EXPECT_NE(c.tail_problem.find("incomplete"), std::string::npos);
  }
}

TEST(StepLog, FlippedByteInsideAFrameIsCorruption) {
  test::ScratchDir dir;
  WriteLog(dir.Join("log.zst"), 10);
  StepLogContents full;
  ASSERT_TRUE(ReadStepLog(dir.Join("log.zst"), &full).ok());
  // A byte in the middle of the second records frame: zstd's checksum catches it.
  test::FlipByte(dir.Join("log.zst"), static_cast<int64_t>(full.frame_ends[1] + 20));
  StepLogContents c;
  Status st = ReadStepLog(dir.Join("log.zst"), &c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("log.zst"), std::string::npos) << st.message();
}

// One zstd frame holding `text`.
std::string ZstdFrame(const std::string& text) {
  std::string frame(ZSTD_compressBound(text.size()), '\0');
  const size_t n = ZSTD_compress(frame.data(), frame.size(), text.data(), text.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  frame.resize(ZSTD_isError(n) ? 0 : n);
  return frame;
}

Status ReadText(const std::string& path, const std::string& frame_text) {
  test::WriteAll(path, ZstdFrame(frame_text));
  StepLogContents c;
  return ReadStepLog(path, &c);
}

TEST(StepLog, WrongMagicIsRefused) {
  test::ScratchDir dir;
  // A valid zstd stream of unrelated JSON is not a step log.
  Status st = ReadText(dir.Join("x.zst"), "{\"kind\":\"header\"}\n");
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("not a Lockstep step log"), std::string::npos) << st.message();
}

TEST(StepLog, FieldsOfTheWrongTypeAreCorruptionNotACrash) {
  test::ScratchDir dir;
  const std::string path = dir.Join("log.zst");
  Status st = ReadText(path, "{\"kind\":\"header\",\"magic\":5}\n");
  EXPECT_NE(st.message().find("not a Lockstep step log"), std::string::npos) << st.message();
  st = ReadText(path, "{\"kind\":\"header\",\"magic\":\"LOCKSTEP-STEPLOG\",\"format_version\":\"1\"}\n");
  EXPECT_NE(st.message().find("format version \"1\" is not supported"), std::string::npos) << st.message();
  const std::string header = "{\"kind\":\"header\",\"magic\":\"LOCKSTEP-STEPLOG\",\"format_version\":1}\n";
  st = ReadText(path, header + "{\"kind\":\"step\",\"step\":\"7\"}\n");
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("step record without an integer \"step\""), std::string::npos) << st.message();
  st = ReadText(path, header + "{\"kind\":3}\n");
  EXPECT_NE(st.message().find("record without a valid \"kind\""), std::string::npos) << st.message();
  EXPECT_TRUE(ReadText(path, header + "{\"kind\":\"step\",\"step\":7}\n").ok());  // the shape that is right
}

// Issue 34: the one parse of a step record (ParseStepRecord) refuses every field of the wrong
// type, naming the file, the step and the field, and keeps what it does not know.
TEST(StepLog, EachStepFieldOfTheWrongTypeIsNamedCorruption) {
  test::ScratchDir dir;
  const std::string path = dir.Join("log.zst");
  const std::string header = "{\"kind\":\"header\",\"magic\":\"LOCKSTEP-STEPLOG\",\"format_version\":1}\n";
  const std::string ok = "\"kind\":\"step\",\"step\":7,\"loss\":2.5,\"loss_bits\":\"0x40200000\"";
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, std::string>>{{"batches", "\"x\""},
                                                        {"batches", "[[1,\"a\"]]"},
                                                        {"grad_norm_bits", "5"},
                                                        {"grad_norm_bits", "\"0xZZ\""},
                                                        {"grad_norm", "\"abc\""},
                                                        {"lr", "\"0.1\""},
                                                        {"epoch", "{}"},
                                                        {"sampler", "{\"epoch\":\"a\"}"},
                                                        {"rng", "3"},
                                                        {"rng", "{\"cpu\":{\"xxh3_128\":12}}"},
                                                        {"rng_other_ranks", "{}"},
                                                        {"wall_time", "\"x\""},
                                                        {"resume_override", "1"}}) {
    const Status st = ReadText(path, header + "{" + ok + ",\"" + field + "\":" + value + "}\n");
    EXPECT_TRUE(st.IsCorruption()) << field << " " << value;
    EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("step 7"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
  }
  // The decimal beside the bits is checked for its type too ...
  const Status loss =
      ReadText(path, header + "{\"kind\":\"step\",\"step\":7,\"loss\":\"abc\",\"loss_bits\":\"0x40200000\"}\n");
  EXPECT_TRUE(loss.IsCorruption()) << loss.message();
  // ... a NaN's is null, and a field this build does not know is kept as it was stored.
  StepLogContents c;
  ASSERT_OK(ReadText(path, header + "{\"kind\":\"step\",\"step\":7,\"loss\":null,\"loss_bits\":\"0x7fc00000\","
                                    "\"lr\":null,\"newer\":{\"a\":1}}\n"));
  ASSERT_OK(ReadStepLog(path, &c));
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_TRUE(std::isnan(c.records[0].loss));
  EXPECT_TRUE(std::isnan(c.records[0].lr));
  EXPECT_EQ(StepFieldJson(c.records[0], "newer"), nlohmann::json::parse("{\"a\":1}"));
  EXPECT_EQ(StepRecordJson(c.records[0])["newer"]["a"], 1);
}

TEST(StepLog, EmptyFileIsCorruption) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("log.zst"), "");
  StepLogContents c;
  EXPECT_TRUE(ReadStepLog(dir.Join("log.zst"), &c).IsCorruption());
}

TEST(StepLog, AppendAfterCutKeepsOneValidLog) {
  test::ScratchDir dir;
  WriteLog(dir.Join("log.zst"), 10);
  StepLogContents c;
  ASSERT_TRUE(ReadStepLog(dir.Join("log.zst"), &c).ok());
  std::unique_ptr<StepLogWriter> w;
  ASSERT_TRUE(StepLogWriter::OpenForAppend(dir.Join("log.zst"), c.frame_ends[1], "", StepLogOptions(), &w).ok());
  ASSERT_TRUE(w->Append({{"step", 5}}).ok());
  ASSERT_TRUE(w->Close().ok());
  StepLogContents after;
  ASSERT_TRUE(ReadStepLog(dir.Join("log.zst"), &after).ok());
  ASSERT_EQ(after.records.size(), 5u);
  EXPECT_EQ(StepRecordJson(after.records[4])["step"], 5);
  EXPECT_FALSE(after.truncated_tail);
}

}  // namespace lockstep

namespace lockstep {
namespace {

// A full generator state saved with DigestedStateJson comes back byte for byte; a state
// whose bytes do not match the size and digest saved beside them is refused.
TEST(GeneratorState, AFullStateDecodesBackAndADamagedOneIsCorruption) {
  std::vector<uint8_t> state(5056);
  for (size_t i = 0; i < state.size(); ++i) state[i] = static_cast<uint8_t>(i * 31 + 7);
  const nlohmann::json saved = DigestedStateJson(state, /*full=*/true);
  std::vector<uint8_t> back;
  ASSERT_TRUE(DecodeFullState(saved, "sampler.json", &back).ok());
  EXPECT_EQ(back, state);

  nlohmann::json digest_only = DigestedStateJson(state, /*full=*/false);
  Status st = DecodeFullState(digest_only, "rng_state.json: cpu", &back);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("rng_state.json: cpu is not a full generator state"), std::string::npos) << st.message();

  std::vector<uint8_t> other = state;
  other[100] ^= 1;
  nlohmann::json swapped = saved;
  swapped["base64"] = DigestedStateJson(other, true)["base64"];  // same size, other bytes
  st = DecodeFullState(swapped, "rng_state.json: cpu", &back);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("does not match its saved size and XXH3-128"), std::string::npos) << st.message();

  nlohmann::json garbled = saved;
  garbled["base64"] = "not base64!";
  EXPECT_TRUE(DecodeFullState(garbled, "x", &back).IsCorruption());
}

}  // namespace
}  // namespace lockstep
