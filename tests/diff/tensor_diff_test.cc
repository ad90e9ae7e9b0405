// Tensor diffs: ULP distances in each dtype, NumPy's tolerance rule, and checkpoints or
// tensor files compared across formats (Lockstep .h5 against HF safetensors, sharded too).
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "diff/tensor_compare.h"
#include "diff/tensor_diff.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TensorData Floats(const std::string& name, const std::vector<float>& v) {
  TensorData t;
  t.name = name;
  t.dtype = DType::kFloat32;
  t.shape = {static_cast<int64_t>(v.size())};
  t.bytes.resize(v.size() * 4);
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

std::string RawFloats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

TensorDiff Compare(DType dtype, const std::string& a, const std::string& b, const Tolerance& tol = {}) {
  TensorComparer c(dtype, tol);
  c.Add(reinterpret_cast<const uint8_t*>(a.data()), reinterpret_cast<const uint8_t*>(b.data()), a.size());
  TensorDiff d;
  c.Finish(&d);
  return d;
}

TEST(UlpDistance, CountsRepresentableValuesInTheDTypeItself) {
  EXPECT_EQ(UlpDistance(DType::kFloat32, Bits(1.0f), Bits(std::nextafter(1.0f, 2.0f))), 1u);
  EXPECT_EQ(UlpDistance(DType::kFloat32, Bits(0.0f), Bits(-0.0f)), 0u);
  // Across zero: from the smallest negative subnormal to the smallest positive one is 2.
  EXPECT_EQ(UlpDistance(DType::kFloat32, 0x80000001u, 0x00000001u), 2u);
  // bf16 1.0 = 0x3f80, its next value 0x3f81: one bf16 ULP, not 65536 float32 ULPs.
  EXPECT_EQ(UlpDistance(DType::kBFloat16, 0x3f80, 0x3f81), 1u);
  EXPECT_EQ(UlpDistance(DType::kFloat16, 0x3c00, 0x3c02), 2u);
  EXPECT_EQ(UlpDistance(DType::kFloat32, Bits(NAN), Bits(1.0f)), UINT64_MAX);
  uint64_t one, next;
  const double d1 = 1.0, d2 = std::nextafter(1.0, 2.0);
  std::memcpy(&one, &d1, 8);
  std::memcpy(&next, &d2, 8);
  EXPECT_EQ(UlpDistance(DType::kFloat64, one, next), 1u);
}

TEST(TensorComparer, ReportsCountFirstIndexAndDistances) {
  const float up = std::nextafter(3.0f, 4.0f);
  const TensorDiff d = Compare(DType::kFloat32, RawFloats({1, 2, 3, 4, 5}), RawFloats({1, 2, up, 4.5f, 5}));
  EXPECT_EQ(d.status, "differ");
  EXPECT_EQ(d.differing, 2);
  EXPECT_EQ(d.first_index, 2);
  EXPECT_DOUBLE_EQ(d.max_abs, 0.5);
  EXPECT_DOUBLE_EQ(d.max_rel, 0.5 / 4.5);
  EXPECT_EQ(d.max_ulp, UlpDistance(DType::kFloat32, Bits(4.0f), Bits(4.5f)));
  EXPECT_EQ(d.first_a, "3 (0x40400000)");
  EXPECT_FALSE(d.within_tolerance());
  EXPECT_TRUE(Compare(DType::kFloat32, RawFloats({1, 2}), RawFloats({1, 2})).identical());
}

TEST(TensorComparer, ToleranceFollowsNumpysRuleOrUlps) {
  const std::string a = RawFloats({1.0f, 100.0f}), b = RawFloats({1.001f, 100.1f});
  EXPECT_FALSE(Compare(DType::kFloat32, a, b).within_tolerance());
  EXPECT_TRUE(Compare(DType::kFloat32, a, b, {std::nullopt, 2e-3, std::nullopt}).within_tolerance());
  EXPECT_FALSE(Compare(DType::kFloat32, a, b, {std::nullopt, 1e-4, std::nullopt}).within_tolerance());
  // atol + rtol * |b|: 0.001 passes on atol alone; 0.1 needs rtol.
  EXPECT_FALSE(Compare(DType::kFloat32, a, b, {2e-3, std::nullopt, std::nullopt}).within_tolerance());
  EXPECT_TRUE(Compare(DType::kFloat32, a, b, {2e-3, 1e-3, std::nullopt}).within_tolerance());
  const std::string c = RawFloats({1.0f}), d = RawFloats({std::nextafter(std::nextafter(1.0f, 2.0f), 2.0f)});
  EXPECT_TRUE(Compare(DType::kFloat32, c, d, {std::nullopt, std::nullopt, 2}).within_tolerance());
  EXPECT_FALSE(Compare(DType::kFloat32, c, d, {std::nullopt, std::nullopt, 1}).within_tolerance());
  // A NaN where a number was is never within any tolerance, and is counted.
  const TensorDiff n = Compare(DType::kFloat32, RawFloats({1.0f}), RawFloats({NAN}), {1e9, 1e9, 1000});
  EXPECT_FALSE(n.within_tolerance());
  EXPECT_EQ(n.nan_b, 1);
}

class CrossFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(WriteTensorFile(dir_.Join("model.h5"), {Floats("a.weight", {1, 2, 3, 4}), Floats("b.bias", {5, 6})}));
  }
  // model.safetensors with a.weight (values `a`) and b.bias (5, 6).
  std::string Safetensors(const std::vector<float>& a, const std::string& name = "model.safetensors") {
    const std::string header = R"({"a.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                               R"("b.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";
    test::WriteSafetensors(dir_.Join(name), header, RawFloats(a) + RawFloats({5, 6}));
    return dir_.Join(name);
  }
  test::ScratchDir dir_;
};

TEST_F(CrossFormat, LockstepH5AgainstHfSafetensorsByName) {
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(dir_.Join("model.h5"), Safetensors({1, 2, 3, 4}), Tolerance(), &d));
  EXPECT_TRUE(d.identical());
  ASSERT_EQ(d.tensors.size(), 2u);
  EXPECT_EQ(d.tensors[0].file_b, "model.safetensors");

  ASSERT_OK(DiffCheckpoints(dir_.Join("model.h5"), Safetensors({1, 2, 3.5f, 4}), Tolerance(), &d));
  EXPECT_FALSE(d.identical());
  const json j = CheckpointDiffJson(d, Tolerance());
  EXPECT_FALSE(j["identical"].get<bool>());
  EXPECT_EQ(j["tensors"][0]["name"], "a.weight");
  EXPECT_EQ(j["tensors"][0]["status"], "differ");
  EXPECT_EQ(j["tensors"][0]["differing"], 1);
  EXPECT_EQ(j["tensors"][0]["first_index"], 2);
  EXPECT_EQ(j["tensors"][0]["max_abs"], 0.5);
  EXPECT_EQ(j["tensors"][1]["status"], "equal");
  ASSERT_OK(
      DiffCheckpoints(dir_.Join("model.h5"), Safetensors({1, 2, 3.5f, 4}), {0.6, std::nullopt, std::nullopt}, &d));
  EXPECT_TRUE(d.within_tolerance());
}

TEST_F(CrossFormat, ShardedIndexIsReadThroughItsShards) {
  const std::string header_1 = R"({"a.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  const std::string header_2 = R"({"b.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  test::WriteSafetensors(dir_.Join("model-00001-of-00002.safetensors"), header_1, RawFloats({1, 2, 3, 4}));
  test::WriteSafetensors(dir_.Join("model-00002-of-00002.safetensors"), header_2, RawFloats({5, 7}));
  ASSERT_OK(WriteJsonFile(
      dir_.Join("model.safetensors.index.json"),
      {{"metadata", json::object()},
       {"weight_map",
        {{"a.weight", "model-00001-of-00002.safetensors"}, {"b.bias", "model-00002-of-00002.safetensors"}}}}));
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(dir_.Join("model.h5"), dir_.Join("model.safetensors.index.json"), Tolerance(), &d));
  ASSERT_EQ(d.tensors.size(), 2u);
  EXPECT_EQ(d.tensors[0].status, "equal");
  EXPECT_EQ(d.tensors[1].status, "differ");
  EXPECT_EQ(d.tensors[1].file_b, "model-00002-of-00002.safetensors");
  EXPECT_EQ(d.tensors[1].first_index, 1);
}

TEST_F(CrossFormat, MissingShapeAndDTypeMismatchesAreNamed) {
  const std::string header = R"({"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("b.bias":{"dtype":"F64","shape":[2],"data_offsets":[16,32]},)"
                             R"("c.extra":{"dtype":"F32","shape":[1],"data_offsets":[32,36]}})";
  const double bias[2] = {5, 6.5};
  test::WriteSafetensors(
      dir_.Join("other.safetensors"), header,
      RawFloats({1, 2, 3, 4}) + std::string(reinterpret_cast<const char*>(bias), 16) + RawFloats({0}));
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(dir_.Join("model.h5"), dir_.Join("other.safetensors"), Tolerance(), &d));
  ASSERT_EQ(d.tensors.size(), 3u);
  EXPECT_EQ(d.tensors[0].status, "shape_mismatch");
  EXPECT_EQ(d.tensors[1].status, "dtype_mismatch");
  EXPECT_EQ(d.tensors[1].differing, 1);  // 6 vs 6.5, decoded: values compare across dtypes
  EXPECT_DOUBLE_EQ(d.tensors[1].max_abs, 0.5);
  EXPECT_EQ(d.tensors[2].status, "missing_in_a");
  EXPECT_FALSE(d.within_tolerance());
}

TEST(CheckpointDirs, HfFixtureAgainstItselfAndAgainstAnotherStep) {
  const std::string run = test::HfRun();
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(run + "/checkpoint-16", run + "/checkpoint-16", Tolerance(), &d));
  EXPECT_TRUE(d.identical());
  bool saw_optimizer = false, saw_rng = false;
  for (const auto& t : d.tensors) {
    saw_optimizer |= t.name.rfind("optimizer/", 0) == 0;
    saw_rng |= t.name.rfind("rng_state.pth/", 0) == 0;
  }
  EXPECT_TRUE(saw_optimizer);  // optimizer.pt read as data
  EXPECT_TRUE(saw_rng);
  ASSERT_OK(DiffCheckpoints(run + "/checkpoint-3", run + "/checkpoint-16", Tolerance(), &d));
  EXPECT_FALSE(d.identical());
  bool saw_state = false;
  for (const auto& s : d.state) saw_state |= s.file == "trainer_state.json" && s.field == "global_step";
  EXPECT_TRUE(saw_state);
}

TEST(CheckpointDirs, UnreadableInputIsAStatusNamingTheFile) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("bad.safetensors"), "\x08\x00\x00\x00\x00\x00\x00\x00{}garbage");
  ASSERT_OK(WriteTensorFile(dir.Join("good.h5"), {Floats("w", {1})}));
  CheckpointDiff d;
  Status st = DiffCheckpoints(dir.Join("good.h5"), dir.Join("bad.safetensors"), Tolerance(), &d);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("bad.safetensors"), std::string::npos) << st.ToString();
  st = DiffCheckpoints(dir.Join("good.h5"), dir.Join("absent.h5"), Tolerance(), &d);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  test::WriteAll(dir.Join("notes.txt"), "x");
  st = DiffCheckpoints(dir.Join("good.h5"), dir.Join("notes.txt"), Tolerance(), &d);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

}  // namespace
}  // namespace lockstep

namespace lockstep {
namespace {

TEST(StateTolerance, NumbersAndFloatBitStringsCompareAsFloat32) {
  const Tolerance one_ulp{std::nullopt, std::nullopt, 1};
  EXPECT_TRUE(NumbersWithinTolerance(json("0x3f800000"), json("0x3f800001"), one_ulp));
  EXPECT_FALSE(NumbersWithinTolerance(json("0x3f800000"), json("0x3f800002"), one_ulp));
  EXPECT_FALSE(NumbersWithinTolerance(json("0x3f800000"), json("0x3f800001"), Tolerance()));  // bit-exact
  EXPECT_TRUE(NumbersWithinTolerance(json(1.0), json(1.0001), {std::nullopt, 1e-3, std::nullopt}));
  EXPECT_FALSE(NumbersWithinTolerance(json("abc"), json("abd"), one_ulp));  // text is never "close"
  EXPECT_FALSE(NumbersWithinTolerance(json("0xZZZZZZZZ"), json("0x3f800000"), one_ulp));
}

}  // namespace
}  // namespace lockstep
