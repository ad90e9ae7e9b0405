#include "formats/tensor_bytes.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/zip_archive.h"

namespace lockstep {
namespace {

constexpr uint64_t kPieceBytes = kTensorPieceBytes;  // what Finish and a held span read at a time

// Bytes [offset, offset + n) of `path` into `dst`; IOError naming the file and `what`.
Status ReadFileBytes(const std::string& path, uint64_t offset, size_t n, uint8_t* dst, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  const Status st = ReadExactlyAt(fd, offset, dst, n, path + " (" + what + ")");
  ::close(fd);
  return st;
}

using Dims = std::vector<int64_t>;

uint64_t Product(Dims::const_iterator begin, Dims::const_iterator end) {
  uint64_t n = 1;
  for (auto it = begin; it != end; ++it) n *= static_cast<uint64_t>(*it);
  return n;
}

uint64_t Product(const Dims& dims) { return Product(dims.begin(), dims.end()); }

class FileRange : public TensorBytes {
 public:
  FileRange(std::string path, uint64_t offset, uint64_t size, std::string what)
      : path_(std::move(path)), offset_(offset), size_(size), what_(std::move(what)) {}
  Status Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const override {
    if (begin > size_ || n > size_ - begin) return Status::InvalidArgument(what_ + ": read past the tensor's end");
    if (buffer->size() < n) buffer->resize(n);
    LOCKSTEP_RETURN_IF_ERROR(ReadFileBytes(path_, offset_ + begin, n, buffer->data(), "tensor '" + what_ + "'"));
    *data = buffer->data();
    return Status::Ok();
  }

 private:
  std::string path_;
  uint64_t offset_, size_;
  std::string what_;
};

class Memory : public TensorBytes {
 public:
  explicit Memory(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  Status Read(uint64_t begin, size_t n, std::vector<uint8_t>*, const uint8_t** data) const override {
    if (begin > bytes_.size() || n > bytes_.size() - begin) return Status::InvalidArgument("read past a tensor's end");
    *data = bytes_.data() + begin;
    return Status::Ok();
  }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace

Status StreamTensorBytes(const TensorBytes& source, uint64_t bytes, size_t element_bytes,
                         const std::function<void(const uint8_t*, size_t)>& consume) {
  const size_t piece = kTensorPieceBytes / std::max<size_t>(1, element_bytes) * std::max<size_t>(1, element_bytes);
  std::vector<uint8_t> buffer;
  for (uint64_t at = 0; at < bytes; at += piece) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(piece, bytes - at));
    const uint8_t* data = nullptr;
    LOCKSTEP_RETURN_IF_ERROR(source.Read(at, n, &buffer, &data));
    consume(data, n);
  }
  return Status::Ok();
}

std::shared_ptr<const TensorBytes> MemoryBytes(std::vector<uint8_t> bytes) {
  return std::make_shared<Memory>(std::move(bytes));
}

std::shared_ptr<const TensorBytes> FileRangeBytes(const std::string& path, uint64_t offset, uint64_t size,
                                                  const std::string& what) {
  return std::make_shared<FileRange>(path, offset, size, what);
}

// One stored archive entry (a storage), read where asked; its CRC-32 runs over the reads
// that continue where the last one ended, and Finish reads the rest.
class TorchArchiveBytes::Storage {
 public:
  Storage(std::string path, std::string entry, uint64_t start, uint64_t size, uint32_t crc)
      : path_(std::move(path)), entry_(std::move(entry)), start_(start), size_(size), expected_(crc) {}

  // A tensor viewing this storage, for messages.
  void AddView(const std::string& tensor) {
    if (views_++ == 0) first_view_ = tensor;
  }

  Status ReadAt(uint64_t at, size_t n, uint8_t* dst) {
    LOCKSTEP_RETURN_IF_ERROR(ReadFileBytes(path_, start_ + at, n, dst, "entry '" + entry_ + "'"));
    if (at <= next_ && at + n > next_) {
      crc_ = Crc32(crc_, dst + (next_ - at), static_cast<size_t>(at + n - next_));
      next_ = at + n;
    }
    return Status::Ok();
  }

  Status Finish() {
    if (finished_) return result_;
    std::vector<uint8_t> piece;
    while (next_ < size_) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kPieceBytes, size_ - next_));
      piece.resize(n);
      result_ = ReadAt(next_, n, piece.data());
      if (!result_.ok()) break;
    }
    if (result_.ok() && crc_ != expected_) {
      std::string of = views_ == 0 ? "no tensor" : "tensor '" + first_view_ + "'";
      if (views_ > 1) of += " and " + std::to_string(views_ - 1) + " more";
      result_ = Status::Corruption(path_ + ": entry '" + entry_ + "' (the storage of " + of +
                                   ") does not match the CRC-32 the archive records (its bytes changed after it"
                                   " was written)");
    }
    finished_ = true;
    return result_;
  }

 private:
  std::string path_, entry_;
  uint64_t start_, size_;
  uint32_t expected_;
  uint64_t next_ = 0;
  uint32_t crc_ = 0;
  bool finished_ = false;
  Status result_;
  std::string first_view_;
  int64_t views_ = 0;
};

namespace {

// A tensor of an archive: a contiguous view is a range of its storage; a strided one is
// gathered from the storage's span (held, or row by row where rows are contiguous).
class StorageView : public TensorBytes {
 public:
  StorageView(std::shared_ptr<TorchArchiveBytes::Storage> storage, TorchTensor t, uint64_t span_end)
      : storage_(std::move(storage)), t_(std::move(t)), elem_(DTypeSize(t_.dtype)), span_end_(span_end) {
    int64_t expected = 1;
    for (size_t d = t_.shape.size(); d-- > 0;) {
      contiguous_ = contiguous_ && (t_.shape[d] == 1 || t_.stride[d] == expected);
      expected *= t_.shape[d];
    }
  }

  Status Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const override {
    if (begin > t_.bytes() || n > t_.bytes() - begin || begin % elem_ || n % elem_) {
      return Status::InvalidArgument(t_.name + ": a read past the tensor's end or across an element");
    }
    if (n == 0) return Status::Ok();
    if (buffer->size() < n) buffer->resize(n);
    *data = buffer->data();
    const uint64_t first = static_cast<uint64_t>(t_.storage_offset) * elem_;
    if (contiguous_) return storage_->ReadAt(first + begin, n, buffer->data());
    const bool rows = !t_.stride.empty() && t_.stride.back() == 1;
    if (span_end_ - first > kMaxHeldSpanBytes && rows) return ReadRows(begin / elem_, n / elem_, buffer->data());
    if (held_.empty()) {
      held_.resize(static_cast<size_t>(span_end_ - first));
      for (uint64_t at = 0; at < held_.size(); at += kPieceBytes) {
        const size_t k = static_cast<size_t>(std::min<uint64_t>(kPieceBytes, held_.size() - at));
        LOCKSTEP_RETURN_IF_ERROR(storage_->ReadAt(first + at, k, held_.data() + at));
      }
    }
    Walk(begin / elem_, n / elem_, [&](uint64_t out, int64_t at, int64_t count) {
      std::memcpy(buffer->data() + out * elem_, held_.data() + static_cast<uint64_t>(at - t_.storage_offset) * elem_,
                  static_cast<size_t>(count) * elem_);
    });
    if (begin + n == t_.bytes()) std::vector<uint8_t>().swap(held_);  // read through: let it go
    return Status::Ok();
  }

 private:
  // Calls copy(output element, storage element, count) for runs of elements [e, e + n) of
  // the view, row-major: each row one run when its elements are adjacent, else one each.
  template <typename Copy>
  void Walk(uint64_t e, uint64_t n, Copy copy) const {
    const size_t dims = t_.shape.size();
    std::vector<int64_t> index(dims, 0);
    uint64_t rest = e;
    for (size_t d = dims; d-- > 0;) {
      index[d] = static_cast<int64_t>(rest % static_cast<uint64_t>(t_.shape[d]));
      rest /= static_cast<uint64_t>(t_.shape[d]);
    }
    const bool rows = dims > 0 && t_.stride.back() == 1;
    for (uint64_t done = 0; done < n;) {
      int64_t at = t_.storage_offset;
      for (size_t d = 0; d < dims; ++d) at += index[d] * t_.stride[d];
      int64_t count = 1;
      if (rows) count = static_cast<int64_t>(std::min<uint64_t>(t_.shape.back() - index.back(), n - done));
      copy(done, at, count);
      done += static_cast<uint64_t>(count);
      if (dims == 0) break;
      index.back() += count - 1;
      for (size_t d = dims; d-- > 0;) {
        if (++index[d] < t_.shape[d]) break;
        index[d] = 0;
      }
    }
  }

  Status ReadRows(uint64_t e, uint64_t n, uint8_t* out) const {
    Status st;
    Walk(e, n, [&](uint64_t o, int64_t at, int64_t count) {
      if (st.ok())
        st = storage_->ReadAt(static_cast<uint64_t>(at) * elem_, static_cast<size_t>(count) * elem_, out + o * elem_);
    });
    return st;
  }

 public:
  Status Finish() const override { return storage_->Finish(); }

 private:
  std::shared_ptr<TorchArchiveBytes::Storage> storage_;
  TorchTensor t_;
  size_t elem_;
  uint64_t span_end_;  // the storage byte after the last the view touches
  bool contiguous_ = true;
  mutable std::vector<uint8_t> held_;  // a strided view's span, while it is read
};

}  // namespace

Status TorchArchiveBytes::Of(const TorchTensor& t, std::shared_ptr<const TensorBytes>* out) {
  const auto it = archive_.storage_entries.find(t.storage);
  if (it == archive_.storage_entries.end()) {
    return Status::Corruption(archive_.path + ": no archive entry for storage " + t.storage);
  }
  const ZipEntry& entry = archive_.entries[it->second];
  if (entry.method != 0) {
    return Status::InvalidArgument(archive_.path + ": entry '" + entry.name + "' is compressed (method " +
                                   std::to_string(entry.method) + "); only stored entries are read");
  }
  // The storage byte after the last element the view touches (strides are never negative).
  uint64_t end = static_cast<uint64_t>(t.storage_offset) + 1;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] == 0) end = static_cast<uint64_t>(t.storage_offset);
    if (t.shape[d] > 0) end += static_cast<uint64_t>(t.shape[d] - 1) * static_cast<uint64_t>(t.stride[d]);
  }
  end *= DTypeSize(t.dtype);
  if (t.storage_offset < 0 || end > entry.size) {
    return Status::Corruption(archive_.path + ": tensor '" + t.name + "' reaches past the end of storage " + t.storage);
  }
  auto& storage = storages_[t.storage];
  if (!storage) {
    uint64_t start = 0;
    LOCKSTEP_RETURN_IF_ERROR(ZipEntryDataOffset(archive_.path, entry, &start));
    storage = std::make_shared<Storage>(archive_.path, entry.name, start, entry.size, entry.crc32);
  }
  storage->AddView(t.name);
  *out = std::make_shared<StorageView>(storage, t, end);
  return Status::Ok();
}

namespace {

// A DCP tensor: each read places the parts of the chunks it covers.
class DcpAssembled : public TensorBytes {
 public:
  DcpAssembled(std::string dir, DcpTensor t) : dir_(std::move(dir)), t_(std::move(t)), elem_(DTypeSize(t_.dtype)) {}

  Status Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const override {
    const uint64_t bytes = Product(t_.size) * elem_;
    if (begin > bytes || n > bytes - begin || begin % elem_ || n % elem_) {
      return Status::InvalidArgument(t_.fqn + ": a read past the tensor's end or across an element");
    }
    if (!opened_) {
      opened_ = true;
      open_status_ = Open();
    }
    LOCKSTEP_RETURN_IF_ERROR(open_status_);
    for (size_t i = 0; i < t_.chunks.size(); ++i) {  // the common case: one chunk holds the range
      uint64_t first = 0;
      if (BlockStart(t_.chunks[i], &first) && first <= begin / elem_ &&
          (begin + n) / elem_ <= first + Product(t_.chunks[i].sizes)) {
        return chunks_[i]->Read(begin - first * elem_, n, buffer, data);
      }
    }
    if (buffer->size() < n) buffer->resize(n);
    std::memset(buffer->data(), 0, n);
    *data = buffer->data();
    std::vector<uint8_t> scratch;  // a chunk's part, on its way into place (freed with the read)
    for (size_t i = 0; i < t_.chunks.size(); ++i) {
      LOCKSTEP_RETURN_IF_ERROR(Place(i, begin / elem_, (begin + n) / elem_, buffer->data(), &scratch));
    }
    return Status::Ok();
  }

  Status Finish() const override {
    for (const auto& c : chunks_) LOCKSTEP_RETURN_IF_ERROR(c->Finish());
    return Status::Ok();
  }

 private:
  std::string Where(const DcpChunk& c) const {
    return dir_ + "/" + c.file + " (tensor '" + t_.fqn + "', bytes " + std::to_string(c.offset) + "+" +
           std::to_string(c.length) + ")";
  }

  // Each chunk as a source of its row-major bytes: a torch.save archive of it, or the raw bytes.
  Status Open() const {
    for (const auto& c : t_.chunks) {
      const std::string file = dir_ + "/" + c.file;
      if (!c.transforms.empty()) {
        return Status::InvalidArgument(Where(c) + ": stored with transform " + c.transforms.front() +
                                       ", which Lockstep does not read");
      }
      std::string head;
      LOCKSTEP_RETURN_IF_ERROR(ReadFileRange(file, c.offset, std::min<uint64_t>(4, c.length), &head));
      std::shared_ptr<const TensorBytes> source;
      if (head == std::string("PK\x03\x04", 4)) {
        TorchArchive archive;
        LOCKSTEP_RETURN_IF_ERROR(ReadTorchArchiveAt(file, c.offset, c.length, &archive));
        if (archive.tensors.size() != 1) return Status::Corruption(Where(c) + ": not one saved tensor");
        if (archive.tensors[0].dtype != t_.dtype || archive.tensors[0].shape != c.sizes) {
          return Status::Corruption(Where(c) + ": the saved chunk's dtype or shape is not the metadata's");
        }
        TorchTensor chunk = archive.tensors[0];
        chunk.name = t_.fqn;  // "(root)" in the chunk's own archive: messages name the tensor
        LOCKSTEP_RETURN_IF_ERROR(TorchArchiveBytes(archive).Of(chunk, &source));
      } else {
        if (c.length != Product(c.sizes) * elem_) {
          return Status::Corruption(Where(c) + ": its length is not the chunk's size");
        }
        source = FileRangeBytes(file, c.offset, c.length, t_.fqn);
      }
      chunks_.push_back(std::move(source));
    }
    return Status::Ok();
  }

  // True when chunk `c` spans every dimension but the first: it is then one range of the
  // tensor, from element `*first`.
  bool BlockStart(const DcpChunk& c, uint64_t* first) const {
    const size_t dims = t_.size.size();
    for (size_t d = 1; d < dims; ++d) {
      if (c.sizes[d] != t_.size[d]) return false;
    }
    *first = dims == 0 ? 0 : static_cast<uint64_t>(c.offsets[0]) * Product(t_.size.begin() + 1, t_.size.end());
    return true;
  }

  // Copies the part of chunk i that lies in global elements [e0, e1) into out (element e0
  // at out[0]). A chunk spanning every dimension but the first is one range of the tensor;
  // any other is a range per line along the last dimension.
  Status Place(size_t i, uint64_t e0, uint64_t e1, uint8_t* out, std::vector<uint8_t>* scratch) const {
    const DcpChunk& c = t_.chunks[i];
    const size_t dims = t_.size.size();
    const auto copy = [&](uint64_t global, uint64_t local, uint64_t count) -> Status {
      const uint64_t from = std::max(global, e0), to = std::min(global + count, e1);
      if (from >= to) return Status::Ok();
      const uint8_t* p = nullptr;
      LOCKSTEP_RETURN_IF_ERROR(
          chunks_[i]->Read((local + from - global) * elem_, static_cast<size_t>((to - from) * elem_), scratch, &p));
      std::memcpy(out + (from - e0) * elem_, p, static_cast<size_t>((to - from) * elem_));
      return Status::Ok();
    };
    uint64_t first = 0;
    if (BlockStart(c, &first)) return copy(first, 0, Product(c.sizes));
    const uint64_t line = static_cast<uint64_t>(c.sizes.back()), lines = Product(c.sizes.begin(), c.sizes.end() - 1);
    std::vector<int64_t> index(dims - 1, 0);  // the line's place in the chunk
    for (uint64_t r = 0; r < lines && line > 0; ++r) {
      uint64_t global = 0;
      for (size_t d = 0; d < dims; ++d) {
        global = global * static_cast<uint64_t>(t_.size[d]) +
                 static_cast<uint64_t>(c.offsets[d] + (d + 1 < dims ? index[d] : 0));
      }
      if (global >= e1) break;  // lines lie in increasing order
      LOCKSTEP_RETURN_IF_ERROR(copy(global, r * line, line));
      for (size_t d = index.size(); d-- > 0;) {
        if (++index[d] < c.sizes[d]) break;
        index[d] = 0;
      }
    }
    return Status::Ok();
  }

  std::string dir_;
  DcpTensor t_;
  size_t elem_;
  mutable bool opened_ = false;
  mutable Status open_status_;
  mutable std::vector<std::shared_ptr<const TensorBytes>> chunks_;
};

}  // namespace

std::shared_ptr<const TensorBytes> DcpTensorBytes(const DcpCheckpoint& checkpoint, const DcpTensor& tensor) {
  return std::make_shared<DcpAssembled>(checkpoint.dir, tensor);
}

}  // namespace lockstep
