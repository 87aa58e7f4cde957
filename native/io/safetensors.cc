#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "bridge/errors.h"
#include "io/json.h"

namespace lethe {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's bound

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}, {"F64", torch::kFloat64},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"U8", torch::kUInt8},      {"BOOL", torch::kBool},
};

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  fail(codes::kBadCheckpoint, path + ": " + why);
}

std::string errnoText() { return std::strerror(errno); }

}  // namespace

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(codes::kIo, path + ": cannot open (" + errnoText() + ")");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(codes::kIo, path + ": cannot stat (" + errnoText() + ")");
    if (!S_ISREG(st.st_mode)) bad(path, "not a regular file");
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) fail(codes::kIo, path + ": cannot map (" + errnoText() + ")");
      data_ = static_cast<const uint8_t*>(p);
    }
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

SafetensorsFile::~SafetensorsFile() = default;
uint64_t SafetensorsFile::fileBytes() const { return map_->size(); }

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

const char* SafetensorsDtype(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  fail(codes::kBadArgument, std::string("dtype ") + c10::toString(t) + " cannot be stored in safetensors here");
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());  // private constructor
  f->path_ = path;
  f->map_ = std::make_unique<MappedFile>(path);
  const uint8_t* bytes = f->map_->data();
  const uint64_t size = f->map_->size();

  uint64_t n = 0;
  for (int i = 7; size >= 8 && i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian u64
  // Sniff for pickles only when the bytes are not a plausible safetensors start (a header length
  // inside the file, then '{'): a valid header of 640, 896, 1152 or 1408 bytes (mod 65536) begins
  // with the same two bytes as a pickle's protocol marker.
  const bool plausible = size >= 9 && n >= 2 && n <= size - 8 && bytes[8] == '{';
  if (!plausible && size >= 2 && bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5)
    bad(path, "this is a Python pickle, not safetensors; pickles can run code and are refused. "
              "Convert it with safetensors' convert script or torch.load + safetensors.torch.save_file");
  if (!plausible && size >= 4 && std::memcmp(bytes, "PK\x03\x04", 4) == 0)
    bad(path, "this is a torch.save zip (pickle) archive, not safetensors; pickles are refused. Convert it to safetensors");
  if (size < 8) bad(path, "file is shorter than the 8-byte header length");
  if (n > kMaxHeaderBytes) bad(path, "header length " + std::to_string(n) + " exceeds the 100 MiB bound");
  if (n > size - 8) bad(path, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) + " bytes)");
  if (n < 2) bad(path, "header is too short to be a JSON object");
  f->headerBytes_ = n;
  const uint64_t dataBytes = size - 8 - n;

  json::Value header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), n);
  } catch (const std::exception& e) {
    bad(path, std::string("header: ") + e.what());
  }
  if (!header.isObject()) bad(path, "header is not a JSON object");

  for (const auto& [name, v] : header.object) {
    if (name == "__metadata__") {
      if (!v.isObject()) bad(path, "__metadata__ must be an object of strings");
      for (const auto& [k, mv] : v.object) {
        if (!mv.isString()) bad(path, "__metadata__." + k + " is not a string");
        f->metadata_.emplace_back(k, mv.s);
      }
      continue;
    }
    if (name.empty()) bad(path, "a tensor has an empty name");
    if (!v.isObject()) bad(path, "tensor '" + name + "' is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offsets = v.find("data_offsets");
    if (!dt || !dt->isString()) bad(path, "tensor '" + name + "' has no dtype string");
    if (!shape || !shape->isArray()) bad(path, "tensor '" + name + "' has no shape array");
    if (!offsets || !offsets->isArray() || offsets->array.size() != 2 || !offsets->array[0].isInt() || !offsets->array[1].isInt())
      bad(path, "tensor '" + name + "' needs data_offsets [begin, end] as integers");
    TensorEntry e;
    e.name = name;
    e.dtype = dt->s;
    const DtypeInfo* info = nullptr;
    for (const auto& d : kDtypes)
      if (e.dtype == d.name) info = &d;
    if (!info) bad(path, "tensor '" + name + "' has unknown dtype '" + e.dtype + "'");
    e.type = info->type;
    // Element count with overflow checks: a hostile shape must not wrap around.
    // The product of the non-zero dimensions is checked too: a zero dimension makes the tensor
    // empty but must not let the others be anything ([0, 2^62, 2^62] is not a shape torch can make).
    uint64_t numel = 1, nonzero = 1;
    for (const auto& s : shape->array) {
      if (!s.isInt() || s.i < 0) bad(path, "tensor '" + name + "' has a shape entry that is not a non-negative integer");
      // Past 2^53 a dimension cannot reach JS exactly (and only an empty tensor could have one).
      if (s.i > (int64_t{1} << 53) - 1) bad(path, "tensor '" + name + "' has a dimension past 2^53");
      uint64_t dim = static_cast<uint64_t>(s.i);
      if (dim != 0 && nonzero > (uint64_t{1} << 62) / dim) bad(path, "tensor '" + name + "' shape overflows");
      if (dim != 0) nonzero *= dim;
      numel *= dim;
      e.shape.push_back(s.i);
    }
    const uint64_t itemsize = c10::elementSize(e.type);
    if (numel > UINT64_MAX / itemsize) bad(path, "tensor '" + name + "' shape overflows");
    if (offsets->array[0].i < 0 || offsets->array[1].i < 0) bad(path, "tensor '" + name + "' has negative offsets");
    e.begin = static_cast<uint64_t>(offsets->array[0].i);
    e.end = static_cast<uint64_t>(offsets->array[1].i);
    if (e.begin > e.end) bad(path, "tensor '" + name + "' has data_offsets with begin after end");
    if (e.end > dataBytes)
      bad(path, "tensor '" + name + "' data [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    ") lies outside the " + std::to_string(dataBytes) + "-byte data section (file truncated?)");
    if (numel * itemsize != e.end - e.begin)
      bad(path, "tensor '" + name + "' shape × dtype size is " + std::to_string(numel * itemsize) + " bytes but its range holds " +
                    std::to_string(e.end - e.begin));
    f->tensors_.push_back(std::move(e));
  }

  // The ranges must tile the data section exactly, as the reference reader (safetensors'
  // Metadata::validate) requires: sorted by (begin, end), each begins where the previous ended,
  // the first at 0 and the last at the end. So no holes, no overlaps, no trailing bytes; an empty
  // tensor sits on a boundary (one strictly inside another's range is refused, as there).
  std::vector<const TensorEntry*> byOffset;
  for (const auto& e : f->tensors_) byOffset.push_back(&e);
  std::sort(byOffset.begin(), byOffset.end(), [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  uint64_t covered = 0;
  const TensorEntry* previous = nullptr;
  for (const TensorEntry* e : byOffset) {
    if (e->begin < covered)
      bad(path, "tensor '" + e->name + "' [" + std::to_string(e->begin) + ", " + std::to_string(e->end) + ")" + (e->begin == e->end ? " (empty) lies inside" : " overlaps") + " tensor '" +
                    previous->name + "' [" + std::to_string(previous->begin) + ", " + std::to_string(previous->end) + ")");
    if (e->begin > covered)
      bad(path, "bytes [" + std::to_string(covered) + ", " + std::to_string(e->begin) + ") of the data section belong to no tensor (a hole before '" +
                    e->name + "'); safetensors ranges must be contiguous");
    covered = e->end;
    previous = e;
  }
  if (covered != dataBytes)
    bad(path, "the data section has " + std::to_string(dataBytes) + " bytes but the tensors cover " + std::to_string(covered) +
                  " (trailing bytes after the last tensor)");
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_.emplace(f->tensors_[i].name, i);
  return f;
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorEntry& SafetensorsFile::require(const std::string& name, const std::string& what) const {
  const TensorEntry* e = find(name);
  if (!e) fail(codes::kBadCheckpoint, path_ + ": no tensor '" + name + "'" + (what.empty() ? "" : " (" + what + ")") + "; was it written by another run or tool?");
  return *e;
}

torch::Tensor SafetensorsFile::Load(const TensorEntry& e) const {
  torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.type));
  const uint64_t bytes = e.end - e.begin;
  if (bytes) std::memcpy(t.data_ptr(), map_->data() + 8 + headerBytes_ + e.begin, bytes);
  return t;
}

namespace {

// Removes the temporary file unless the write was committed.
class TempFile {
 public:
  explicit TempFile(const std::string& target) {
    std::random_device rd;
    path_ = target + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(codes::kIo, target + ": cannot create a temporary file beside it (" + errnoText() + ")");
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  void Write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail(codes::kIo, path_ + ": write failed (" + errnoText() + ")");
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void Commit(const std::string& target) {
    if (::fsync(fd_) != 0) fail(codes::kIo, path_ + ": fsync failed (" + errnoText() + ")");
    ::close(fd_);
    fd_ = -1;
    if (::rename(path_.c_str(), target.c_str()) != 0) fail(codes::kIo, target + ": rename failed (" + errnoText() + ")");
    committed_ = true;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const Metadata& metadata) {
  std::vector<torch::Tensor> payload;
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i)
      header += (i ? "," : "") + json::quote(metadata[i].first) + ":" + json::quote(metadata[i].second);
    header += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__") fail(codes::kBadArgument, "invalid tensor name '" + name + "'");
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    header += std::string(first ? "" : ",") + json::quote(name) + ":{\"dtype\":\"" + SafetensorsDtype(t.scalar_type()) + "\",\"shape\":[";
    for (int64_t d = 0; d < t.dim(); ++d) header += (d ? "," : "") + std::to_string(t.size(d));
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
    first = false;
    payload.push_back(std::move(t));
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned

  TempFile out(path);
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  out.Write(len, 8);
  out.Write(header.data(), header.size());
  for (const auto& t : payload)
    if (t.numel()) out.Write(t.data_ptr(), t.numel() * t.element_size());
  out.Commit(path);
}

}  // namespace lethe
