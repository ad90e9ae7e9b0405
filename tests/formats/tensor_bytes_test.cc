// Tensors read in pieces (formats/tensor_bytes.h): for every piece size, the bytes are what
// the whole-tensor reader gives; a storage's CRC-32 is checked over the pieces; a DCP
// tensor's chunks (blocks of rows, or boxes as tensor parallelism cuts them) are placed
// right, and a range no chunk covers reads as zeros.
#include "formats/tensor_bytes.h"

#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/checksum.h"
#include "formats/zip_archive.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

const std::string kViews = std::string(LOCKSTEP_FIXTURES_DIR) + "/torch/views.pt";

// The tensor's bytes read in pieces of `piece` bytes.
std::vector<uint8_t> InPieces(const TensorBytes& source, uint64_t bytes, size_t piece) {
  std::vector<uint8_t> out, buffer;
  for (uint64_t at = 0; at < bytes; at += piece) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(piece, bytes - at));
    const uint8_t* data = nullptr;
    const Status st = source.Read(at, n, &buffer, &data);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return {};
    out.insert(out.end(), data, data + n);
  }
  return out;
}

TEST(TensorBytes, EveryViewOfAStorageReadsAsTheWholeReaderInPiecesOfEverySize) {
  TorchArchive archive;
  ASSERT_OK(ReadTorchArchive(kViews, &archive));
  ASSERT_FALSE(archive.tensors.empty());
  TorchArchiveBytes sources(archive);
  for (const auto& t : archive.tensors) {
    std::vector<uint8_t> whole;
    ASSERT_OK(ReadTorchTensor(archive, t, &whole));
    std::shared_ptr<const TensorBytes> source;
    ASSERT_OK(sources.Of(t, &source));
    const size_t elem = DTypeSize(t.dtype);
    for (size_t piece = elem; piece <= whole.size(); piece += elem) {
      EXPECT_EQ(InPieces(*source, whole.size(), piece), whole) << t.name << " in pieces of " << piece;
    }
    EXPECT_OK(source->Finish());
  }
}

TEST(TensorBytes, AStorageByteChangedAfterTheSaveFailsItsCrcNamingTheFile) {
  test::ScratchDir dir;
  const std::string path = dir.Join("views.pt");
  std::string bytes = test::ReadAll(kViews);
  TorchArchive archive;
  ASSERT_OK(ReadTorchArchive(kViews, &archive));
  const ZipEntry& storage = archive.entries[archive.storage_entries.at(archive.tensors[0].storage)];
  uint64_t offset = 0;
  ASSERT_OK(ZipEntryDataOffset(kViews, storage, &offset));
  bytes[offset + storage.size - 1] ^= 0x40;  // a byte no view may read: Finish reads it
  test::WriteAll(path, bytes);
  ASSERT_OK(ReadTorchArchive(path, &archive));
  TorchArchiveBytes sources(archive);
  std::shared_ptr<const TensorBytes> source;
  ASSERT_OK(sources.Of(archive.tensors[0], &source));
  InPieces(*source, archive.tensors[0].bytes(), 4);
  const Status st = source->Finish();
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("CRC-32"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("tensor '" + archive.tensors[0].name + "'"), std::string::npos) << st.message();
}

// A [4, 6] float32 tensor, its elements 0..23, saved as raw chunks of `boxes` ({row, col,
// rows, cols}) back to back in one .distcp file.
DcpCheckpoint RawDcp(const test::ScratchDir& dir, const std::vector<std::vector<int64_t>>& boxes) {
  DcpCheckpoint checkpoint;
  checkpoint.dir = dir.path();
  DcpTensor t;
  t.fqn = "w";
  t.size = {4, 6};
  std::string file;
  for (const auto& b : boxes) {
    DcpChunk c;
    c.offsets = {b[0], b[1]};
    c.sizes = {b[2], b[3]};
    c.file = "__0_0.distcp";
    c.offset = file.size();
    for (int64_t r = b[0]; r < b[0] + b[2]; ++r) {
      for (int64_t col = b[1]; col < b[1] + b[3]; ++col) {
        const float v = static_cast<float>(r * 6 + col);
        file.append(reinterpret_cast<const char*>(&v), 4);
      }
    }
    c.length = file.size() - c.offset;
    t.chunks.push_back(c);
  }
  test::WriteAll(dir.Join("__0_0.distcp"), file);
  checkpoint.tensors.push_back(t);
  return checkpoint;
}

std::vector<float> Floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST(TensorBytes, DcpChunksCutByRowsOrByBoxesArePlacedInPiecesOfEverySize) {
  std::vector<float> expected(24);
  for (int i = 0; i < 24; ++i) expected[i] = static_cast<float>(i);
  const std::vector<std::vector<std::vector<int64_t>>> layouts = {
      {{0, 0, 4, 6}},                                           // one rank
      {{0, 0, 1, 6}, {1, 0, 3, 6}},                             // rows (FSDP)
      {{0, 0, 4, 2}, {0, 2, 4, 4}},                             // columns (tensor parallel)
      {{0, 0, 2, 3}, {0, 3, 2, 3}, {2, 0, 2, 3}, {2, 3, 2, 3}}  // a 2 x 2 mesh
  };
  for (const auto& boxes : layouts) {
    test::ScratchDir dir;
    const DcpCheckpoint checkpoint = RawDcp(dir, boxes);
    const auto source = DcpTensorBytes(checkpoint, checkpoint.tensors[0]);
    for (size_t piece = 4; piece <= 96; piece += 4) {
      EXPECT_EQ(Floats(InPieces(*source, 96, piece)), expected) << boxes.size() << " chunks, pieces of " << piece;
    }
    EXPECT_OK(source->Finish());
  }
}

TEST(TensorBytes, ARangeNoDcpChunkCoversReadsAsZeros) {
  test::ScratchDir dir;
  const DcpCheckpoint checkpoint = RawDcp(dir, {{0, 0, 2, 6}, {2, 0, 2, 3}});  // rows 2..3, columns 3..5 unsaved
  const auto source = DcpTensorBytes(checkpoint, checkpoint.tensors[0]);
  const std::vector<float> got = Floats(InPieces(*source, 96, 20));
  for (int i = 0; i < 24; ++i) {
    const bool saved = i < 12 || i % 6 < 3;
    EXPECT_EQ(got[i], saved ? static_cast<float>(i) : 0.0f) << "element " << i;
  }
}

TEST(TensorBytes, Crc32IsZlibs) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7919 % 251);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{4095}, data.size()}) {
    const uint32_t ours = Crc32(Crc32(0, data.data(), cut), data.data() + cut, data.size() - cut);
    const uLong theirs = crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    EXPECT_EQ(ours, static_cast<uint32_t>(theirs)) << "split at " << cut;
  }
}

}  // namespace
}  // namespace lockstep
