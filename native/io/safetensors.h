// safetensors: a validating mmap reader and an atomic writer.
// Every header field is checked before any byte of tensor data is touched, so a corrupt or
// hostile file ends in LETHE_BAD_CHECKPOINT, never in a crash.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lethe {

struct TensorEntry {
  std::string name;
  std::string dtype;  // safetensors spelling: F32, BF16, ...
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

class MappedFile;

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const Metadata& metadata() const { return metadata_; }
  uint64_t headerBytes() const { return headerBytes_; }
  uint64_t fileBytes() const;
  const TensorEntry* find(const std::string& name) const;
  // The entry, or LETHE_BAD_CHECKPOINT naming the file, the tensor and `what` it is for.
  const TensorEntry& require(const std::string& name, const std::string& what = "") const;

  // A CPU tensor holding a copy of the entry's bytes (the mapping can go away afterwards).
  torch::Tensor Load(const TensorEntry& entry) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> map_;
  std::vector<TensorEntry> tensors_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in tensors_
  Metadata metadata_;
  uint64_t headerBytes_ = 0;
};

// Writes to a temporary file beside `path`, fsyncs it and renames it into place:
// readers see the old file or the whole new one, never half of one.
void WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const Metadata& metadata);

const char* SafetensorsDtype(torch::ScalarType t);

bool FileExists(const std::string& path);

}  // namespace lethe
