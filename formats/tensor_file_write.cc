// WriteTensorFile: a Lockstep tensor file written at the disk's speed.
//
// libhdf5 builds only the metadata, in memory (the core driver, no backing store): every
// dataset is created with its storage allocated at once and never filled, so the image holds
// the superblock, groups, object headers and attributes, and each tensor's place in the
// file (H5Dget_offset). The file is then written in offset order through formats/io.h: the
// metadata from the image, each tensor's bytes straight from the caller's memory (no staging
// copy), hashed on the way for the manifest (a large tensor on a second thread while it is
// written), and fsynced once. The result is an ordinary
// HDF5 file (contiguous datasets) that h5py, h5dump and ReadTensorFile read as before.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/hdf5_common.h"
#include "formats/io.h"

namespace lockstep {
using namespace hdf5;  // NOLINT: this file is the format
namespace {

// The core driver's memory, allocated through our callbacks so that its size is known, and
// kept when libhdf5 lets go of it at H5Fclose (which writes the last metadata and, unlike
// H5Fflush, does not first grow the image to the whole file's size). Bytes past `size` were
// never written by libhdf5 and are zeros in the file.
struct ImageMemory {
  void* data = nullptr;
  size_t size = 0;
  ImageMemory() = default;
  ImageMemory(const ImageMemory&) = delete;
  ImageMemory& operator=(const ImageMemory&) = delete;
  ~ImageMemory() { std::free(data); }
};

void* ImageMalloc(size_t size, H5FD_file_image_op_t, void* udata) {
  auto* m = static_cast<ImageMemory*>(udata);
  std::free(m->data);
  m->data = std::malloc(size);
  m->size = m->data != nullptr ? size : 0;
  return m->data;
}
void* ImageRealloc(void* ptr, size_t size, H5FD_file_image_op_t, void* udata) {
  auto* m = static_cast<ImageMemory*>(udata);
  void* grown = std::realloc(ptr, size);
  if (grown != nullptr) {
    m->data = grown;
    m->size = size;
  }
  return grown;
}
void* ImageMemcpy(void* dst, const void* src, size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(dst, src, size);
}
herr_t ImageFree(void* ptr, H5FD_file_image_op_t, void* udata) {
  if (ptr != static_cast<ImageMemory*>(udata)->data) std::free(ptr);  // the image itself is kept
  return 0;
}
void* UdataCopy(void* udata) { return udata; }  // one ImageMemory, owned by the writer
herr_t UdataFree(void*) { return 0; }

// Metadata goes into blocks this large, so it gathers at the front of the file instead of
// between tensors (each object header is a few hundred bytes).
hsize_t MetaBlockSize(size_t tensors, size_t name_bytes) { return (8 << 10) + 1024 * tensors + 2 * name_bytes; }

hid_t MetadataFapl(ImageMemory* memory, size_t tensors, size_t name_bytes) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_core(fapl, 64 << 10, /*backing_store=*/0);
  H5Pset_meta_block_size(fapl, MetaBlockSize(tensors, name_bytes));
  H5FD_file_image_callbacks_t callbacks = {ImageMalloc, ImageMemcpy, ImageRealloc, ImageFree,
                                           UdataCopy,   UdataFree,   memory};
  H5Pset_file_image_callbacks(fapl, &callbacks);
  return fapl;
}

Status WriteStringAttr(hid_t obj, const char* name, const std::string& value, const std::string& path) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size());
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), value.data()) < 0) {
    return Status::IOError(path + ": cannot write attribute " + name);
  }
  return Status::Ok();
}

Status CheckTensor(const TensorView& t, const std::string& path) {
  if (t.name.empty() || t.name.front() == '/' || t.name.back() == '/' || t.name.find("//") != std::string::npos ||
      t.name == "." || t.name.find("/./") != std::string::npos) {
    return Status::InvalidArgument(path + ": invalid tensor name '" + t.name + "'");
  }
  TensorData shape_only;
  shape_only.shape = t.shape;
  const int64_t numel = shape_only.numel();
  if (numel < 0 || t.bytes != static_cast<size_t>(numel) * DTypeSize(t.dtype) || (t.bytes > 0 && !t.data)) {
    return Status::InvalidArgument(path + ": tensor '" + t.name + "' has " + std::to_string(t.bytes) +
                                   " bytes, its dtype and shape need " +
                                   std::to_string(numel * static_cast<int64_t>(DTypeSize(t.dtype))));
  }
  return Status::Ok();
}

// The bytes of the link names each group will hold ("" is the root): sizes each group's
// name heap up front, so it never grows and moves past the tensors' storage.
std::map<std::string, size_t> NameBytesPerGroup(const std::vector<TensorView>& tensors) {
  std::map<std::string, size_t> bytes;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    for (size_t start = 0;;) {
      const size_t slash = t.name.find('/', start);
      const std::string parent = start == 0 ? "" : t.name.substr(0, start - 1);
      const std::string path = t.name.substr(0, slash);
      if (seen.insert(path).second) bytes[parent] += path.size() - (start == 0 ? 0 : start) + 8;
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  return bytes;
}

// Creates the groups on the way to `name` ("a/b/c" needs "a" and "a/b").
Status EnsureParentGroups(hid_t file, const std::string& name, const std::map<std::string, size_t>& name_bytes,
                          std::set<std::string>* made, const std::string& path) {
  for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1)) {
    const std::string group = name.substr(0, pos);
    if (!made->insert(group).second) continue;
    Handle gcpl(NoTimesPlist(H5P_GROUP_CREATE), H5Pclose);
    const auto hint = name_bytes.find(group);
    if (hint != name_bytes.end()) H5Pset_local_heap_size_hint(gcpl.get(), hint->second + 64);
    Handle g(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return Status::IOError(path + ": cannot create group '" + group + "'");
  }
  return Status::Ok();
}

// A tensor's bytes and where they go in the file.
struct Placed {
  uint64_t offset;
  const TensorView* tensor;
};

// Creates the dataset for `t` with its storage allocated now and never filled; appends
// where its bytes go to `*placed` (empty tensors have no storage).
Status CreateDataset(hid_t file, const TensorView& t, const std::string& path, std::vector<Placed>* placed) {
  std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
  Handle space(
      t.shape.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      H5Sclose);
  Handle dcpl(NoTimesPlist(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  Handle ds(H5Dcreate2(file, t.name.c_str(), FileType(t.dtype), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  if (!space.valid() || !ds.valid()) return Status::IOError(path + ": cannot create dataset '" + t.name + "'");
  if (t.bytes > 0) {
    const haddr_t offset = H5Dget_offset(ds.get());
    if (offset == HADDR_UNDEF) return Status::IOError(path + ": dataset '" + t.name + "' has no storage");
    placed->push_back({offset, &t});
  }
  return WriteStringAttr(ds.get(), kDTypeAttr, DTypeName(t.dtype), path);
}

// Writes the file's bytes in order: metadata from the image, tensors from their memory.
// Small pieces are gathered into one buffer so that a file of many small tensors costs few
// write calls; a large tensor goes to the file straight from where it lies.
class FileStream {
 public:
  FileStream(int fd, const std::string& path, BackgroundXxh3* hash) : fd_(fd), path_(path), hash_(hash) {}

  // A large piece is hashed on the hash's thread while it is written (the tensor's memory
  // stays as it is until the write returns); a small one here, as the buffer takes it.
  Status Put(const void* data, size_t size) {
    if (size >= kDirect) {
      LOCKSTEP_RETURN_IF_ERROR(Flush());
      hash_->Add(data, size);
      return io::Write(fd_, data, size, path_);
    }
    hash_->Update(data, size);
    buffer_.append(static_cast<const char*>(data), size);
    return buffer_.size() >= kDirect ? Flush() : Status::Ok();
  }
  Status PutZeros(uint64_t size) {
    static const std::string zeros(64 << 10, '\0');
    for (uint64_t left = size; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
      LOCKSTEP_RETURN_IF_ERROR(Put(zeros.data(), n));
      left -= n;
    }
    return Status::Ok();
  }
  Status Flush() {
    if (buffer_.empty()) return Status::Ok();
    Status st = io::Write(fd_, buffer_.data(), buffer_.size(), path_);
    buffer_.clear();
    return st;
  }

 private:
  static constexpr size_t kDirect = 1 << 20;
  int fd_;
  const std::string& path_;
  BackgroundXxh3* hash_;
  std::string buffer_;
};

// The bytes [begin, end) of the metadata image: what libhdf5 wrote, zeros past it.
Status PutImage(FileStream* out, const ImageMemory& image, uint64_t begin, uint64_t end) {
  if (begin < image.size) {
    const uint64_t stop = std::min<uint64_t>(end, image.size);
    LOCKSTEP_RETURN_IF_ERROR(out->Put(static_cast<const char*>(image.data) + begin, stop - begin));
    begin = stop;
  }
  return begin < end ? out->PutZeros(end - begin) : Status::Ok();
}

// The file's size as its superblock states it (the "end of file address", written at
// H5Fclose), so the file is exactly as long as libhdf5 says and any cut shows. Superblock
// versions 0 and 1 keep it at byte 40 or 44, versions 2 and 3 at byte 28 (HDF5 File
// Format Specification, section II.A), with 8-byte addresses.
bool SuperblockEndOfFile(const ImageMemory& image, uint64_t* eof) {
  const auto* bytes = static_cast<const unsigned char*>(image.data);
  if (image.size < 56 || std::memcmp(bytes, "\x89HDF\r\n\x1a\n", 8) != 0) return false;
  const unsigned version = bytes[8];
  size_t at = 0;
  if (version == 0 || version == 1) {
    if (bytes[13] != 8) return false;  // size of offsets
    at = version == 0 ? 40 : 44;
  } else if (version == 2 || version == 3) {
    if (bytes[9] != 8) return false;
    at = 28;
  } else {
    return false;
  }
  std::memcpy(eof, bytes + at, 8);  // little-endian, as is every machine we build for
  return *eof > 0 && *eof != ~uint64_t{0};
}

Status WriteLaidOut(const std::string& path, const ImageMemory& image, uint64_t file_size, std::vector<Placed> placed,
                    WrittenFile* written) {
  std::sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) { return a.offset < b.offset; });
  int fd = -1;
  LOCKSTEP_RETURN_IF_ERROR(io::Create(path, &fd));
  BackgroundXxh3 hash;
  FileStream out(fd, path, &hash);
  Status st;
  uint64_t at = 0;
  for (const Placed& p : placed) {
    if (p.offset < at || p.offset + p.tensor->bytes > file_size) {
      st = Status::IOError(path + ": libhdf5 placed tensor '" + p.tensor->name + "' outside the file or over another");
      break;
    }
    st = PutImage(&out, image, at, p.offset);
    if (st.ok()) st = out.Put(p.tensor->data, p.tensor->bytes);
    if (!st.ok()) break;
    at = p.offset + p.tensor->bytes;
  }
  if (st.ok()) st = PutImage(&out, image, at, file_size);
  if (st.ok()) st = out.Flush();
  if (st.ok()) st = io::Fsync(fd, path);
  if (::close(fd) != 0 && st.ok()) st = io::ErrnoStatus(path, "close failed");
  if (st.ok() && written != nullptr) *written = {file_size, hash.HexDigest(), {}};
  return st;
}

// Where each of `tensors` went (`placed`; an empty one has no storage: offset 0), by name.
std::vector<TensorExtent> ExtentsOf(const std::vector<TensorView>& tensors, const std::vector<Placed>& placed) {
  std::map<const TensorView*, uint64_t> offsets;
  for (const Placed& p : placed) offsets[p.tensor] = p.offset;
  std::vector<TensorExtent> out;
  for (const auto& t : tensors) {
    const auto at = offsets.find(&t);
    out.push_back({t.name, t.dtype, t.shape, at == offsets.end() ? 0 : at->second, t.bytes});
  }
  std::sort(out.begin(), out.end(), [](const TensorExtent& a, const TensorExtent& b) { return a.name < b.name; });
  return out;
}

}  // namespace

Status WriteTensorFile(const std::string& path, const std::vector<TensorView>& tensors, WrittenFile* written) {
  SilenceHdf5();
  std::set<std::string> names;
  for (const auto& t : tensors) {
    LOCKSTEP_RETURN_IF_ERROR(CheckTensor(t, path));
    if (!names.insert(t.name).second) return Status::InvalidArgument(path + ": duplicate tensor name '" + t.name + "'");
  }
  ImageMemory image;
  std::vector<Placed> placed;
  const std::map<std::string, size_t> name_bytes = NameBytesPerGroup(tensors);
  size_t all_name_bytes = 0;
  for (const auto& [group, bytes] : name_bytes) all_name_bytes += bytes;
  Handle fcpl(NoTimesPlist(H5P_FILE_CREATE), H5Pclose);
  Handle fapl(MetadataFapl(&image, tensors.size(), all_name_bytes), H5Pclose);
  Handle file(H5Fcreate(kImageName, H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose);
  if (!file.valid()) return Status::IOError(path + ": cannot create an HDF5 image in memory");
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttr(file.get(), kMagicAttr, kMagic, path));
  LOCKSTEP_RETURN_IF_ERROR(WriteStringAttr(file.get(), kVersionAttr, std::to_string(kFormatVersion), path));
  std::set<std::string> groups;
  for (const auto& t : tensors) {
    LOCKSTEP_RETURN_IF_ERROR(EnsureParentGroups(file.get(), t.name, name_bytes, &groups, path));
    LOCKSTEP_RETURN_IF_ERROR(CreateDataset(file.get(), t, path, &placed));
  }
  if (H5Fclose(file.release()) < 0) return Status::IOError(path + ": cannot lay out the HDF5 file");
  uint64_t file_size = 0;
  if (!SuperblockEndOfFile(image, &file_size)) return Status::IOError(path + ": libhdf5 wrote no superblock");
  std::vector<TensorExtent> extents = ExtentsOf(tensors, placed);
  LOCKSTEP_RETURN_IF_ERROR(WriteLaidOut(path, image, file_size, std::move(placed), written));
  if (written != nullptr) written->tensors = std::move(extents);
  return Status::Ok();
}

Status WriteTensorFile(const std::string& path, const std::vector<TensorData>& tensors, WrittenFile* written) {
  std::vector<TensorView> views;
  views.reserve(tensors.size());
  for (const auto& t : tensors) views.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  return WriteTensorFile(path, views, written);
}

}  // namespace lockstep
