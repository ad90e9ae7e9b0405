// A checkpoint's tensor files read and verified in one pass (ReadTensorFileVerifying), and
// the manifest that tells it where the tensors lie (the "tensors" of a file entry).
#include <filesystem>
#include <map>
#include <memory>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"
#include "formats/tensor_sources.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

TensorData Make(const std::string& name, DType dtype, std::vector<int64_t> shape, int salt) {
  TensorData t{name, dtype, std::move(shape), {}};
  t.bytes.resize(static_cast<size_t>(t.numel()) * DTypeSize(dtype));
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<uint8_t>(i * 131 + salt);
  return t;
}

// An optimizer-like file: many groups, large and small and empty tensors, out of name order.
std::vector<TensorData> Tensors() {
  std::vector<TensorData> out;
  for (int i = 0; i < 6; ++i) {
    out.push_back(Make("exp_avg/l" + std::to_string(i), DType::kFloat32, {300, 500}, i));  // 600 KB each
    out.push_back(Make("step/l" + std::to_string(i), DType::kInt64, {}, i));
  }
  out.push_back(Make("a.bf16", DType::kBFloat16, {7}, 9));
  out.push_back(Make("empty", DType::kFloat32, {0, 3}, 0));
  return out;
}

// Reads `path` one pass into fresh buffers, one per tensor.
Status ReadAll(const std::string& path, const WrittenFile& written, std::map<std::string, std::vector<uint8_t>>* out) {
  return ReadTensorFileVerifying(path, written, [&](const TensorExtent& e, void** dst) {
    auto& bytes = (*out)[e.name];
    bytes.assign(e.bytes, 0xEE);
    *dst = bytes.data();
    return Status::Ok();
  });
}

class VerifyingRead : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(WriteTensorFile(path_, tensors_, &written_)); }

  test::ScratchDir dir_;
  const std::string path_ = dir_.Join("optimizer.h5");
  const std::vector<TensorData> tensors_ = Tensors();
  WrittenFile written_;
};

// The writer records where it put every tensor, and that is where libhdf5 finds them.
TEST_F(VerifyingRead, TheWriterRecordsWhereEveryTensorLies) {
  std::vector<TensorExtent> located;
  bool all_raw = false;
  ASSERT_OK(LocateTensorExtents(path_, &located, &all_raw));
  EXPECT_TRUE(all_raw);
  ASSERT_EQ(written_.tensors.size(), tensors_.size());
  ASSERT_EQ(located.size(), written_.tensors.size());
  for (size_t i = 0; i < located.size(); ++i) {
    EXPECT_EQ(written_.tensors[i].name, located[i].name);
    EXPECT_EQ(written_.tensors[i].offset, located[i].offset) << located[i].name;
    EXPECT_EQ(written_.tensors[i].bytes, located[i].bytes) << located[i].name;
    EXPECT_EQ(written_.tensors[i].shape, located[i].shape) << located[i].name;
  }
}

TEST_F(VerifyingRead, OnePassLandsEveryTensorsBytes) {
  std::map<std::string, std::vector<uint8_t>> landed;
  ASSERT_OK(ReadAll(path_, written_, &landed));
  ASSERT_EQ(landed.size(), tensors_.size());
  for (const auto& t : tensors_) EXPECT_EQ(landed[t.name], t.bytes) << t.name;
}

// A flipped bit anywhere, in a tensor or in the HDF5 metadata between them, is caught by
// the digest of the one pass, and the message names the file.
TEST_F(VerifyingRead, ADamagedByteInATensorOrInTheMetadataIsCorruption) {
  const uint64_t in_tensor = written_.tensors[3].offset + 1000;
  for (const uint64_t at : {in_tensor, uint64_t{100}}) {
    test::FlipByte(path_, static_cast<int64_t>(at));
    std::map<std::string, std::vector<uint8_t>> landed;
    const Status st = ReadAll(path_, written_, &landed);
    EXPECT_TRUE(st.IsCorruption()) << at << ": " << st.ToString();
    EXPECT_NE(st.message().find(path_ + ": checksum"), std::string::npos) << st.message();
    test::FlipByte(path_, static_cast<int64_t>(at));  // back as it was
  }
  std::map<std::string, std::vector<uint8_t>> landed;
  EXPECT_OK(ReadAll(path_, written_, &landed));
}

// A manifest whose digest is right but whose tensor list is not (damaged by hand): the
// file, once vouched for, is parsed, and the lie is Corruption, never bytes put elsewhere.
TEST_F(VerifyingRead, ATensorListThatIsNotTheFilesIsCorruption) {
  WrittenFile wrong = written_;
  std::swap(wrong.tensors[2].offset, wrong.tensors[3].offset);  // exp_avg/l0 and l1: one size, swapped
  ASSERT_EQ(wrong.tensors[2].bytes, wrong.tensors[3].bytes);
  std::map<std::string, std::vector<uint8_t>> landed;
  const Status st = ReadAll(path_, wrong, &landed);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("list of tensors is not what the file holds"), std::string::npos) << st.message();
}

TEST_F(VerifyingRead, ACutOrMissingFileIsNamed) {
  test::WriteAll(path_, test::ReadAll(path_).substr(0, written_.size - 10));
  std::map<std::string, std::vector<uint8_t>> landed;
  Status st = ReadAll(path_, written_, &landed);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(path_ + ": size "), std::string::npos) << st.message();
  std::filesystem::remove(path_);
  st = ReadAll(path_, written_, &landed);
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find(path_), std::string::npos) << st.message();
}

TEST_F(VerifyingRead, APlacersRefusalStops) {
  const Status st = ReadTensorFileVerifying(
      path_, written_, [](const TensorExtent& e, void**) { return Status::Corruption(e.name + " does not fit"); });
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("a.bf16 does not fit"), std::string::npos) << st.message();
}

// A checkpoint of that file: the manifest keeps the tensor list, kChecksumsOnLoad leaves
// the file's checksum to the load, and kChecksums still reads it.
class ManifestTensors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::unique_ptr<CheckpointStaging> s;
    ASSERT_OK(CheckpointStaging::Begin(run_.path(), 3, &s));
    WrittenFile written;
    ASSERT_OK(WriteTensorFile(s->FilePath(kModelFile), Tensors(), &written));
    s->NoteWritten(kModelFile, written);
    test::WriteAll(s->FilePath("state.json"), "{}");
    ASSERT_OK(s->Commit(&dir_));
  }
  std::string ManifestPath() const { return dir_ + "/" + kManifestFile; }

  test::ScratchDir run_;
  std::string dir_;
};

TEST_F(ManifestTensors, TheManifestListsATensorFilesTensors) {
  Manifest m;
  ASSERT_OK(ValidateCheckpoint(dir_, VerifyMode::kChecksums, &m));
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_EQ(m.files[0].path, kModelFile);
  EXPECT_EQ(m.files[0].content.tensors.size(), Tensors().size());
  EXPECT_TRUE(m.files[1].content.tensors.empty());  // state.json
  std::map<std::string, std::vector<uint8_t>> landed;
  EXPECT_OK(ReadAll(dir_ + "/" + kModelFile, m.files[0].content, &landed));
}

TEST_F(ManifestTensors, ChecksumsOnLoadLeavesOnlyTheTensorFilesToTheLoad) {
  Manifest m;
  ASSERT_OK(ValidateCheckpoint(dir_, VerifyMode::kSizes, &m));
  test::FlipByte(dir_ + "/" + kModelFile, static_cast<int64_t>(m.files[0].content.tensors[4].offset));
  EXPECT_OK(ValidateCheckpoint(dir_, VerifyMode::kChecksumsOnLoad));  // the load will see it
  EXPECT_TRUE(ValidateCheckpoint(dir_, VerifyMode::kChecksums).IsCorruption());
  std::map<std::string, std::vector<uint8_t>> landed;
  EXPECT_TRUE(ReadAll(dir_ + "/" + kModelFile, m.files[0].content, &landed).IsCorruption());

  test::WriteAll(dir_ + "/state.json", "[]");  // same size, other bytes: no load checks it
  const Status st = ValidateCheckpoint(dir_, VerifyMode::kChecksumsOnLoad);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("state.json: checksum"), std::string::npos) << st.message();
}

// A manifest's tensor list that could send bytes outside the file or over each other is
// refused when the manifest is parsed, naming the manifest.
TEST_F(ManifestTensors, AMalformedTensorListIsCorruptionOfTheManifest) {
  nlohmann::json good;
  ASSERT_OK(ReadJsonFile(ManifestPath(), &good));
  const auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = good;
    edit(j["files"][0]["tensors"]);
    test::WriteAll(ManifestPath(), j.dump());
    return ValidateCheckpoint(dir_, VerifyMode::kSizes);
  };
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      // t[0] is a.bf16, t[1] the empty tensor, t[2] and t[3] exp_avg/l0 and l1
      {"past the end", [](nlohmann::json& t) { t[2]["offset"] = 1ull << 40; }},
      {"overlap", [](nlohmann::json& t) { t[3]["offset"] = t[2]["offset"].get<uint64_t>() + 4; }},
      {"bytes not the shape's", [](nlohmann::json& t) { t[2]["bytes"] = t[2]["bytes"].get<uint64_t>() + 4; }},
      {"unknown dtype", [](nlohmann::json& t) { t[0]["dtype"] = "complex64"; }},
      {"unsorted", [](nlohmann::json& t) { std::swap(t[0], t[2]); }},
      {"negative dimension", [](nlohmann::json& t) { t[2]["shape"][0] = -300; }},
      {"not a list", [](nlohmann::json& t) { t = "everything"; }},
  };
  for (const auto& [what, edit] : cases) {
    const Status st = with(edit);
    EXPECT_TRUE(st.IsCorruption()) << what << ": " << st.ToString();
    EXPECT_NE(st.message().find(ManifestPath()), std::string::npos) << what << ": " << st.message();
  }
  test::WriteAll(ManifestPath(), good.dump());
  EXPECT_OK(ValidateCheckpoint(dir_, VerifyMode::kChecksums));
}

// diff and verify-resume list a checkpoint's tensors in this process when its manifest
// vouches for the file's bytes; any other file, a damaged one included, is parsed in a
// child, so the input on which the fuzzer found a heap overflow inside libhdf5 is a Status
// there too, never a crash.
TEST_F(ManifestTensors, ListingParsesInProcessOnlyWhatTheManifestVouchesFor) {
  std::vector<TensorEntry> listed;
  ASSERT_OK(AppendTensorFile(dir_ + "/" + kModelFile, "", &listed));
  EXPECT_EQ(listed.size(), Tensors().size());
  const std::string hostile = std::string(LOCKSTEP_FIXTURES_DIR) + "/hostile/hdf5_heap_overflow.h5";
  test::WriteAll(dir_ + "/" + kModelFile, test::ReadAll(hostile));  // listed, but not these bytes
  listed.clear();
  const Status st = AppendTensorFile(dir_ + "/" + kModelFile, "", &listed);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(kModelFile), std::string::npos) << st.message();
}

}  // namespace
}  // namespace lockstep
