#include "formats/tensor_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "formats/file_util.h"
#include "formats/hdf5_common.h"

#include <algorithm>
#include <map>
#include <set>

namespace lockstep {
using namespace hdf5;  // NOLINT: this file is the format
namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
const DTypeInfo kDTypes[] = {
    {DType::kFloat32, "float32", 4},   {DType::kFloat64, "float64", 8}, {DType::kFloat16, "float16", 2},
    {DType::kBFloat16, "bfloat16", 2}, {DType::kInt64, "int64", 8},     {DType::kInt32, "int32", 4},
    {DType::kInt16, "int16", 2},       {DType::kInt8, "int8", 1},       {DType::kUInt8, "uint8", 1},
    {DType::kBool, "bool", 1},
};

// HDF5 works on an in-memory image (the core driver, no backing store): files are read
// whole through ReadFileToString and written whole through WriteFileDurably. So HDF5
// never holds a descriptor of ours (a full disk cannot leave a handle open at exit), every
// write goes through formats/io.h (fault injection sees it), and a fuzzer can hand it bytes.
constexpr uint64_t kMaxTensorFileBytes = 64ull << 30;

hid_t InMemoryFapl(const std::string* image) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_core(fapl, 1 << 20, /*backing_store=*/0);
  if (image != nullptr) H5Pset_file_image(fapl, const_cast<char*>(image->data()), image->size());
  return fapl;
}

// Reads a fixed-length string attribute; NotFound when absent.
Status ReadStringAttr(hid_t obj, const char* name, std::string* value, const std::string& where) {
  if (H5Aexists(obj, name) <= 0) return Status::NotFound(where + ": attribute '" + name + "' missing");
  Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (!attr.valid() || !type.valid() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0) {
    return Status::Corruption(where + ": attribute '" + name + "' is not a fixed-length string");
  }
  const size_t size = H5Tget_size(type.get());
  if (size > 4096) return Status::Corruption(where + ": attribute '" + name + "' is too long");
  std::string buf(size, '\0');
  if (H5Aread(attr.get(), type.get(), &buf[0]) < 0) {
    return Status::Corruption(where + ": cannot read attribute '" + name + "'");
  }
  buf.resize(std::min(buf.size(), buf.find('\0')));
  *value = buf;
  return Status::Ok();
}

struct VisitContext {
  std::vector<std::string> names;
};
// H5Ovisit's callback type changed in HDF5 1.12 (H5O_info2_t, H5Ovisit3).
#if H5_VERSION_GE(1, 12, 0)
using ObjectInfo = H5O_info2_t;
#else
using ObjectInfo = H5O_info_t;
#endif
herr_t CollectDatasets(hid_t, const char* name, const ObjectInfo* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<VisitContext*>(data)->names.push_back(name);
  return 0;
}
herr_t VisitObjects(hid_t file, VisitContext* ctx) {
#if H5_VERSION_GE(1, 12, 0)
  return H5Ovisit3(file, H5_INDEX_NAME, H5_ITER_INC, CollectDatasets, ctx, H5O_INFO_BASIC);
#else
  return H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, CollectDatasets, ctx, H5O_INFO_BASIC);
#endif
}

// A dataset's dtype (its attribute, checked against the stored element size) and shape,
// with its byte count checked against the file's size.
Status DescribeDataset(hid_t ds, const std::string& where, uint64_t file_size, DType* dtype,
                       std::vector<int64_t>* shape, uint64_t* nbytes) {
  std::string dtype_name;
  LOCKSTEP_RETURN_IF_ERROR(ReadStringAttr(ds, kDTypeAttr, &dtype_name, where));
  if (!DTypeFromName(dtype_name, dtype)) return Status::Corruption(where + ": unknown dtype '" + dtype_name + "'");
  Handle type(H5Dget_type(ds), H5Tclose);
  if (!type.valid() || H5Tget_size(type.get()) != DTypeSize(*dtype)) {
    return Status::Corruption(where + ": stored element size disagrees with dtype " + dtype_name);
  }
  Handle space(H5Dget_space(ds), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 32) return Status::Corruption(where + ": bad dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  TensorData shape_only;
  shape_only.shape.assign(dims.begin(), dims.end());
  const int64_t numel = shape_only.numel();
  *shape = shape_only.shape;
  *nbytes = static_cast<uint64_t>(numel) * DTypeSize(*dtype);
  if (numel < 0 || *nbytes > file_size) {
    return Status::Corruption(where + ": shape claims " + std::to_string(*nbytes) + " bytes, more than the file holds");
  }
  return Status::Ok();
}

Status ReadOne(hid_t file, const std::string& name, uint64_t file_size, const std::string& path, TensorData* t) {
  const std::string where = path + ": tensor '" + name + "'";
  Handle ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) return Status::Corruption(where + ": cannot open dataset");
  t->name = name;
  uint64_t nbytes = 0;
  LOCKSTEP_RETURN_IF_ERROR(DescribeDataset(ds.get(), where, file_size, &t->dtype, &t->shape, &nbytes));
  t->bytes.assign(nbytes, 0);
  if (nbytes > 0 && H5Dread(ds.get(), MemType(t->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t->bytes.data()) < 0) {
    return Status::Corruption(where + ": data unreadable (truncated or damaged file)");
  }
  return Status::Ok();
}

}  // namespace

const char* DTypeName(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "unknown";
}
bool DTypeFromName(const std::string& name, DType* dtype) {
  for (const auto& d : kDTypes) {
    if (name == d.name) {
      *dtype = d.dtype;
      return true;
    }
  }
  return false;
}
size_t DTypeSize(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > (int64_t{1} << 50) / d)) return -1;  // negative or absurd
    n *= d;
  }
  return n;
}

Status ReadTensorFile(const std::string& path, std::vector<TensorData>* tensors) {
  tensors->clear();
  std::string image;
  LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(path, &image, kMaxTensorFileBytes));
  return ReadTensorImage(image, path, tensors);
}

Status ReadTensorImage(const std::string& image, const std::string& path, std::vector<TensorData>* tensors) {
  SilenceHdf5();
  tensors->clear();
  static const char kHdf5Signature[] = "\x89HDF\r\n\x1a\n";
  if (image.size() < 8 || image.compare(0, 8, kHdf5Signature, 8) != 0) {
    return Status::Corruption(path + ": not an HDF5 file (no HDF5 signature; truncated or damaged)");
  }
  Handle fapl(InMemoryFapl(&image), H5Pclose);
  Handle file(H5Fopen(kImageName, H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file.valid()) return Status::Corruption(path + ": HDF5 file cannot be opened (truncated or damaged)");
  std::string magic, version;
  Status st = ReadStringAttr(file.get(), kMagicAttr, &magic, path);
  if (!st.ok() || magic != kMagic) {
    return Status::Corruption(path + ": not a Lockstep tensor file (magic '" + std::string(kMagic) + "' missing)");
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadStringAttr(file.get(), kVersionAttr, &version, path));
  if (version != std::to_string(kFormatVersion)) {
    return Status::Corruption(path + ": tensor format version " + version +
                              " is not supported by this build (it reads version " + std::to_string(kFormatVersion) +
                              ")");
  }
  const hsize_t file_size = image.size();
  VisitContext ctx;
  if (VisitObjects(file.get(), &ctx) < 0) {
    return Status::Corruption(path + ": cannot list datasets (damaged file)");
  }
  std::sort(ctx.names.begin(), ctx.names.end());
  tensors->resize(ctx.names.size());
  for (size_t i = 0; i < ctx.names.size(); ++i) {
    LOCKSTEP_RETURN_IF_ERROR(ReadOne(file.get(), ctx.names[i], file_size, path, &(*tensors)[i]));
  }
  return Status::Ok();
}

namespace {

// The extent of dataset `name`, or *raw = false when its bytes are not stored raw.
Status LocateOne(hid_t file, const std::string& name, uint64_t file_size, const std::string& path, TensorExtent* e,
                 bool* raw) {
  const std::string where = path + ": tensor '" + name + "'";
  Handle ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) return Status::Corruption(where + ": cannot open dataset");
  e->name = name;
  LOCKSTEP_RETURN_IF_ERROR(DescribeDataset(ds.get(), where, file_size, &e->dtype, &e->shape, &e->bytes));
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  Handle dcpl(H5Dget_create_plist(ds.get()), H5Pclose);
  const bool plain = dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl.get()) == 0 &&
                     H5Tequal(type.get(), FileType(e->dtype)) > 0;
  const haddr_t offset = H5Dget_offset(ds.get());
  if (e->bytes == 0) return Status::Ok();
  if (!plain || offset == HADDR_UNDEF || offset > file_size || e->bytes > file_size - offset) {
    *raw = false;
    return Status::Ok();
  }
  e->offset = offset;
  return Status::Ok();
}

}  // namespace

Status LocateTensorExtents(const std::string& path, std::vector<TensorExtent>* extents, bool* all_raw) {
  SilenceHdf5();
  extents->clear();
  *all_raw = true;
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return Status::NotFound(path + ": cannot stat: " + std::strerror(errno));
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  // libhdf5 says only that it could not open the file: a permission or I/O error is named
  // first, so that an unreadable file is never called damaged.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  ::close(fd);
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) return Status::Corruption(path + ": HDF5 file cannot be opened (truncated or damaged)");
  std::string magic, version;
  Status st = ReadStringAttr(file.get(), kMagicAttr, &magic, path);
  if (!st.ok() || magic != kMagic) {
    return Status::Corruption(path + ": not a Lockstep tensor file (magic '" + std::string(kMagic) + "' missing)");
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadStringAttr(file.get(), kVersionAttr, &version, path));
  if (version != std::to_string(kFormatVersion)) {
    return Status::Corruption(path + ": tensor format version " + version + " is not supported by this build");
  }
  VisitContext ctx;
  if (VisitObjects(file.get(), &ctx) < 0) return Status::Corruption(path + ": cannot list datasets (damaged file)");
  std::sort(ctx.names.begin(), ctx.names.end());
  extents->resize(ctx.names.size());
  for (size_t i = 0; i < ctx.names.size(); ++i) {
    LOCKSTEP_RETURN_IF_ERROR(LocateOne(file.get(), ctx.names[i], file_size, path, &(*extents)[i], all_raw));
  }
  return Status::Ok();
}

namespace {

// The slow way, for files another writer laid out (chunked, filtered datasets).
Status ReadThroughHdf5(const std::string& path, const TensorPlacer& place) {
  std::vector<TensorData> tensors;
  LOCKSTEP_RETURN_IF_ERROR(ReadTensorFile(path, &tensors));
  for (const auto& t : tensors) {
    const TensorExtent e{t.name, t.dtype, t.shape, 0, t.bytes.size()};
    void* dst = nullptr;
    LOCKSTEP_RETURN_IF_ERROR(place(e, &dst));
    if (dst != nullptr && !t.bytes.empty()) std::memcpy(dst, t.bytes.data(), t.bytes.size());
  }
  return Status::Ok();
}

}  // namespace

Status ReadTensorFileInto(const std::string& path, const TensorPlacer& place) {
  std::vector<TensorExtent> extents;
  bool all_raw = true;
  LOCKSTEP_RETURN_IF_ERROR(LocateTensorExtents(path, &extents, &all_raw));
  if (!all_raw) return ReadThroughHdf5(path, place);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  Status st;
  for (const auto& e : extents) {
    void* dst = nullptr;
    st = place(e, &dst);
    if (st.ok() && dst != nullptr && e.bytes > 0)
      st = ReadExactlyAt(fd, e.offset, dst, e.bytes, path + ": tensor '" + e.name + "'");
    if (!st.ok()) break;
  }
  ::close(fd);
  return st;
}

}  // namespace lockstep
