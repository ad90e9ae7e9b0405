// Internal to formats/: what the tensor-file reader (tensor_file.cc) and writer
// (tensor_file_write.cc) share: the format's attribute names, the dtype-to-HDF5 type map, and
// small HDF5 helpers. Not a public header.
#pragma once

#include <hdf5.h>

#include <string>

#include "formats/status.h"
#include "formats/tensor_file.h"

namespace lockstep {
namespace hdf5 {

inline constexpr char kMagicAttr[] = "lockstep_magic";
inline constexpr char kMagic[] = "LOCKSTEP-TENSORS";
inline constexpr char kVersionAttr[] = "lockstep_format_version";
inline constexpr int kFormatVersion = 1;
inline constexpr char kDTypeAttr[] = "dtype";
// The name HDF5 is given for an in-memory image: the core driver refuses to open an image
// under the name of a file that exists on disk, and this one never can (nothing is created
// in /proc).
inline constexpr char kImageName[] = "/proc/self/lockstep-hdf5-image";

// The HDF5 type a dtype is stored as. Half floats have no portable HDF5 type in 1.10, so
// they are stored as their 16-bit patterns; the "dtype" attribute says how to read them.
inline hid_t FileType(DType d) {
  switch (d) {
    case DType::kFloat32:
      return H5T_IEEE_F32LE;
    case DType::kFloat64:
      return H5T_IEEE_F64LE;
    case DType::kFloat16:
    case DType::kBFloat16:
      return H5T_STD_U16LE;
    case DType::kInt64:
      return H5T_STD_I64LE;
    case DType::kInt32:
      return H5T_STD_I32LE;
    case DType::kInt16:
      return H5T_STD_I16LE;
    case DType::kInt8:
      return H5T_STD_I8LE;
    case DType::kUInt8:
    case DType::kBool:
      return H5T_STD_U8LE;
  }
  return H5T_STD_U8LE;
}
inline hid_t MemType(DType d) {
  switch (d) {
    case DType::kFloat32:
      return H5T_NATIVE_FLOAT;
    case DType::kFloat64:
      return H5T_NATIVE_DOUBLE;
    case DType::kFloat16:
    case DType::kBFloat16:
      return H5T_NATIVE_UINT16;
    case DType::kInt64:
      return H5T_NATIVE_INT64;
    case DType::kInt32:
      return H5T_NATIVE_INT32;
    case DType::kInt16:
      return H5T_NATIVE_INT16;
    case DType::kInt8:
      return H5T_NATIVE_INT8;
    case DType::kUInt8:
    case DType::kBool:
      return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_UINT8;
}

class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  hid_t release() {  // the caller closes it now
    const hid_t id = id_;
    id_ = -1;
    return id;
  }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints an error stack to stderr by default; we report through Status instead.
inline void SilenceHdf5() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// An object-creation property list with modification times off, so equal content gives
// byte-identical files (reproducibility is the point of this product).
inline hid_t NoTimesPlist(hid_t cls) {
  hid_t p = H5Pcreate(cls);
  H5Pset_obj_track_times(p, 0);
  return p;
}
}  // namespace hdf5
}  // namespace lockstep
