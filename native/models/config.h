// Reading a component's config.json with diffusers' defaults for absent keys.
#pragma once
#include <string>
#include <vector>

#include "io/json.h"

namespace lethe {

class Config {
 public:
  Config(json::Value root, std::string source) : root_(std::move(root)), source_(std::move(source)) {}
  static Config FromFile(const std::string& path);

  bool has(const std::string& key) const;  // present and not null
  int64_t integer(const std::string& key, int64_t fallback) const;
  int64_t integer(const std::string& key) const;  // required
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> integers(const std::string& key) const;  // required list
  std::vector<std::string> strings(const std::string& key) const;
  // An int or a list of ints (diffusers allows both for per-block settings), expanded to n.
  std::vector<int64_t> perBlock(const std::string& key, size_t n, int64_t fallback) const;
  std::vector<bool> perBlockBool(const std::string& key, size_t n, bool fallback) const;
  const std::string& source() const { return source_; }

 private:
  const json::Value* get(const std::string& key) const;
  [[noreturn]] void bad(const std::string& key, const std::string& expected) const;
  json::Value root_;
  std::string source_;
};

}  // namespace lethe
