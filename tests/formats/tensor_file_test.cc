#include "formats/tensor_file.h"

#include <gtest/gtest.h>

#include <map>

#include "formats/checksum.h"

#include "tests/test_util.h"

namespace lockstep {
namespace {

TensorData Make(const std::string& name, DType dtype, std::vector<int64_t> shape) {
  TensorData t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(static_cast<size_t>(t.numel()) * DTypeSize(dtype));
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<uint8_t>(i * 131 + name.size());
  return t;
}

std::vector<TensorData> EveryDType() {
  return {Make("a.f32", DType::kFloat32, {3, 4}),
          Make("b.f64", DType::kFloat64, {5}),
          Make("c.f16", DType::kFloat16, {2, 2, 2}),
          Make("d.bf16", DType::kBFloat16, {7}),
          Make("e.i64", DType::kInt64, {}),
          Make("f.i32", DType::kInt32, {1, 1}),
          Make("g.i16", DType::kInt16, {3}),
          Make("h.i8", DType::kInt8, {4}),
          Make("i.u8", DType::kUInt8, {0, 5}),
          Make("j.bool", DType::kBool, {6}),
          Make("exp_avg/fc1.weight", DType::kFloat32, {2, 3})};
}

}  // namespace

TEST(TensorFile, EveryDTypeShapeAndScalarRoundTripsBitForBit) {
  test::ScratchDir dir;
  const auto tensors = EveryDType();
  ASSERT_TRUE(WriteTensorFile(dir.Join("t.h5"), tensors).ok());
  std::vector<TensorData> back;
  Status st = ReadTensorFile(dir.Join("t.h5"), &back);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& want : tensors) {
    auto it = std::find_if(back.begin(), back.end(), [&](const TensorData& t) { return t.name == want.name; });
    ASSERT_NE(it, back.end()) << want.name;
    EXPECT_EQ(it->dtype, want.dtype) << want.name;
    EXPECT_EQ(it->shape, want.shape) << want.name;
    EXPECT_EQ(it->bytes, want.bytes) << want.name;
  }
}

TEST(TensorFile, SameContentGivesByteIdenticalFiles) {
  test::ScratchDir dir;
  ASSERT_TRUE(WriteTensorFile(dir.Join("a.h5"), EveryDType()).ok());
  ASSERT_TRUE(WriteTensorFile(dir.Join("b.h5"), EveryDType()).ok());
  EXPECT_EQ(test::ReadAll(dir.Join("a.h5")), test::ReadAll(dir.Join("b.h5")));
}

TEST(TensorFile, TruncatedFileIsCorruptionNamingTheFile) {
  test::ScratchDir dir;
  ASSERT_TRUE(WriteTensorFile(dir.Join("t.h5"), EveryDType()).ok());
  for (uint64_t cut : std::vector<uint64_t>{1, 100, test::FileSize(dir.Join("t.h5")) / 2}) {
    test::ScratchDir copy;
    test::WriteAll(copy.Join("t.h5"), test::ReadAll(dir.Join("t.h5")));
    test::ShrinkFile(copy.Join("t.h5"), cut);
    std::vector<TensorData> back;
    Status st = ReadTensorFile(copy.Join("t.h5"), &back);
    EXPECT_TRUE(st.IsCorruption()) << "cut " << cut << ": " << st.ToString();
    EXPECT_NE(st.message().find("t.h5"), std::string::npos);
  }
}

TEST(TensorFile, NotHdf5IsCorruption) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("x.h5"), "this is not hdf5");
  std::vector<TensorData> back;
  Status st = ReadTensorFile(dir.Join("x.h5"), &back);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("not an HDF5 file"), std::string::npos) << st.message();
}

TEST(TensorFile, RefusesMismatchedBytesAndDuplicateNames) {
  test::ScratchDir dir;
  TensorData bad = Make("w", DType::kFloat32, {4});
  bad.bytes.pop_back();
  EXPECT_TRUE(WriteTensorFile(dir.Join("a.h5"), {bad}).IsInvalidArgument());
  EXPECT_TRUE(WriteTensorFile(dir.Join("b.h5"), {Make("w", DType::kInt8, {1}), Make("w", DType::kInt8, {1})})
                  .IsInvalidArgument());
  EXPECT_TRUE(WriteTensorFile(dir.Join("c.h5"), {Make("/abs", DType::kInt8, {1})}).IsInvalidArgument());
}

TEST(TensorFile, DTypeNamesRoundTrip) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kInt32,
                  DType::kInt16, DType::kInt8, DType::kUInt8, DType::kBool}) {
    DType back;
    ASSERT_TRUE(DTypeFromName(DTypeName(d), &back));
    EXPECT_EQ(back, d);
  }
  DType unused;
  EXPECT_FALSE(DTypeFromName("complex64", &unused));
}

// libhdf5 parses bytes no manifest vouched for in a child process: the same tensors come
// back, a damaged file is Corruption naming it, and the input on which the fuzzer found a
// heap overflow inside libhdf5 is a Status, never a crash of the caller.
// The save path hashes from memory as it writes; the manifest trusts that digest, so it
// must be the digest of the bytes on disk, for small tensors gathered in the write buffer
// and large ones written from their own memory alike.
TEST(TensorFile, DigestOfTheWriteIsTheDigestOfTheFile) {
  test::ScratchDir dir;
  auto tensors = EveryDType();
  tensors.push_back(Make("big/w", DType::kFloat32, {1 << 19}));  // 2 MiB: written directly
  WrittenFile written;
  ASSERT_OK(WriteTensorFile(dir.Join("t.h5"), tensors, &written));
  std::string hex;
  uint64_t size = 0;
  ASSERT_OK(FileXxh3Hex(dir.Join("t.h5"), &hex, &size));
  EXPECT_EQ(written.size, size);
  EXPECT_EQ(written.xxh3_128, hex);
  EXPECT_EQ(size, test::FileSize(dir.Join("t.h5")));
}

// Many groups and names (an optimizer file: three groups of every parameter) with large
// tensors: the metadata must stay in front of the data, so every tensor lies raw and whole
// where LocateTensorExtents finds it, and the bytes read straight from there round-trip.
TEST(TensorFile, ReadIntoPlacesEveryTensorsBytesWhereAsked) {
  test::ScratchDir dir;
  std::vector<TensorData> tensors;
  for (int i = 0; i < 40; ++i) {
    for (const char* group : {"exp_avg/", "exp_avg_sq/"}) {
      tensors.push_back(
          Make(std::string(group) + "layer." + std::to_string(i) + ".weight", DType::kFloat32, {300, 70}));
    }
    tensors.push_back(Make("step/layer." + std::to_string(i) + ".weight", DType::kInt64, {}));
  }
  ASSERT_OK(WriteTensorFile(dir.Join("opt.h5"), tensors));
  std::map<std::string, std::vector<uint8_t>> landed;
  ASSERT_OK(ReadTensorFileInto(dir.Join("opt.h5"), [&](const TensorExtent& e, void** dst) {
    auto& bytes = landed[e.name];
    bytes.assign(e.bytes, 0xEE);
    *dst = bytes.data();
    return Status::Ok();
  }));
  ASSERT_EQ(landed.size(), tensors.size());
  for (const auto& t : tensors) EXPECT_EQ(landed[t.name], t.bytes) << t.name;
}

TEST(TensorFile, ReadIntoStopsAtThePlacersRefusal) {
  test::ScratchDir dir;
  ASSERT_OK(WriteTensorFile(dir.Join("t.h5"), EveryDType()));
  int asked = 0;
  const Status st = ReadTensorFileInto(dir.Join("t.h5"), [&](const TensorExtent& e, void**) {
    ++asked;
    return Status::Corruption(e.name + " does not fit");
  });
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_EQ(asked, 1);
  const Status missing =
      ReadTensorFileInto(dir.Join("absent.h5"), [](const TensorExtent&, void**) { return Status::Ok(); });
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("absent.h5"), std::string::npos) << missing.ToString();
}

TEST(UntrustedTensorFile, ReadsTheSameTensorsAndNamesDamage) {
  test::ScratchDir dir;
  std::vector<TensorData> tensors(2);
  tensors[0] = {"a/w", DType::kFloat32, {2, 3}, std::vector<uint8_t>(24, 7)};
  tensors[1] = {"b", DType::kInt64, {}, std::vector<uint8_t>(8, 1)};
  ASSERT_OK(WriteTensorFile(dir.Join("t.h5"), tensors));
  std::vector<TensorData> direct, isolated;
  ASSERT_OK(ReadTensorFile(dir.Join("t.h5"), &direct));
  ASSERT_OK(ReadUntrustedTensorFile(dir.Join("t.h5"), &isolated));
  ASSERT_EQ(isolated.size(), direct.size());
  for (size_t i = 0; i < direct.size(); ++i) {
    EXPECT_EQ(isolated[i].name, direct[i].name);
    EXPECT_EQ(isolated[i].dtype, direct[i].dtype);
    EXPECT_EQ(isolated[i].shape, direct[i].shape);
    EXPECT_EQ(isolated[i].bytes, direct[i].bytes);
  }
  test::ShrinkFile(dir.Join("t.h5"), 300);
  const Status st = ReadUntrustedTensorFile(dir.Join("t.h5"), &isolated);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(dir.Join("t.h5")), std::string::npos) << st.message();
  const std::string hostile = std::string(LOCKSTEP_FIXTURES_DIR) + "/hostile/hdf5_heap_overflow.h5";
  const Status h = ReadUntrustedTensorFile(hostile, &isolated);
  EXPECT_TRUE(h.IsCorruption()) << h.ToString();
  EXPECT_NE(h.message().find("hdf5_heap_overflow.h5"), std::string::npos) << h.message();
}

}  // namespace lockstep
