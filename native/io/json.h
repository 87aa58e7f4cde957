// A small strict JSON reader/writer for safetensors headers (no third-party dependency to vendor).
// Integers without fraction or exponent keep full int64 precision (tensor offsets can pass 2^53).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lethe::json {

struct Value {
  enum class Kind { Null, Bool, Int, Double, String, Array, Object };
  Kind kind = Kind::Null;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // file order kept

  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isString() const { return kind == Kind::String; }
  bool isInt() const { return kind == Kind::Int; }
  const Value* find(const std::string& key) const;
};

// Throws std::runtime_error with the byte offset of the problem.
Value parse(const char* data, size_t size);

std::string quote(const std::string& s);  // a JSON string literal

}  // namespace lethe::json
