#include "models/config.h"

#include <fstream>
#include <sstream>

#include "bridge/errors.h"

namespace lethe {

Config Config::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(codes::kBadCheckpoint, path + ": missing (a diffusers component needs its config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  try {
    json::Value v = json::parse(text.data(), text.size());
    if (!v.isObject()) fail(codes::kBadCheckpoint, path + ": not a JSON object");
    return Config(std::move(v), path);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    fail(codes::kBadCheckpoint, path + ": " + e.what());
  }
}

const json::Value* Config::get(const std::string& key) const {
  const json::Value* v = root_.find(key);
  return (v && v->kind != json::Value::Kind::Null) ? v : nullptr;
}

void Config::bad(const std::string& key, const std::string& expected) const {
  fail(codes::kBadCheckpoint, source_ + ": '" + key + "' must be " + expected);
}

bool Config::has(const std::string& key) const { return get(key) != nullptr; }

int64_t Config::integer(const std::string& key, int64_t fallback) const {
  const json::Value* v = get(key);
  if (!v) return fallback;
  if (v->kind == json::Value::Kind::Int) return v->i;
  // Range first: casting a double outside int64's range is undefined behaviour.
  if (v->kind == json::Value::Kind::Double && v->d >= -9.2e18 && v->d <= 9.2e18 && v->d == static_cast<double>(static_cast<int64_t>(v->d)))
    return static_cast<int64_t>(v->d);
  bad(key, "an integer");
}

int64_t Config::integer(const std::string& key) const {
  if (!get(key)) fail(codes::kBadCheckpoint, source_ + ": required key '" + key + "' is missing");
  return integer(key, 0);
}

double Config::number(const std::string& key, double fallback) const {
  const json::Value* v = get(key);
  if (!v) return fallback;
  if (v->kind == json::Value::Kind::Int) return static_cast<double>(v->i);
  if (v->kind == json::Value::Kind::Double) return v->d;
  bad(key, "a number");
}

bool Config::boolean(const std::string& key, bool fallback) const {
  const json::Value* v = get(key);
  if (!v) return fallback;
  if (v->kind != json::Value::Kind::Bool) bad(key, "true or false");
  return v->b;
}

std::string Config::string(const std::string& key, const std::string& fallback) const {
  const json::Value* v = get(key);
  if (!v) return fallback;
  if (!v->isString()) bad(key, "a string");
  return v->s;
}

std::vector<int64_t> Config::integers(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v || !v->isArray()) bad(key, "a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : v->array) {
    if (!e.isInt()) bad(key, "a list of integers");
    out.push_back(e.i);
  }
  return out;
}

std::vector<std::string> Config::strings(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v || !v->isArray()) bad(key, "a list of strings");
  std::vector<std::string> out;
  for (const auto& e : v->array) {
    if (!e.isString()) bad(key, "a list of strings");
    out.push_back(e.s);
  }
  return out;
}

std::vector<int64_t> Config::perBlock(const std::string& key, size_t n, int64_t fallback) const {
  const json::Value* v = get(key);
  if (!v) return std::vector<int64_t>(n, fallback);
  if (v->isArray()) {
    std::vector<int64_t> out = integers(key);
    if (out.size() != n) bad(key, "an integer or a list of " + std::to_string(n) + " integers (one per block)");
    return out;
  }
  return std::vector<int64_t>(n, integer(key, fallback));
}

std::vector<bool> Config::perBlockBool(const std::string& key, size_t n, bool fallback) const {
  const json::Value* v = get(key);
  if (!v) return std::vector<bool>(n, fallback);
  if (v->isArray()) {
    if (v->array.size() != n) bad(key, "a boolean or a list of " + std::to_string(n) + " booleans");
    std::vector<bool> out;
    for (const auto& e : v->array) {
      if (e.kind != json::Value::Kind::Bool) bad(key, "a list of booleans");
      out.push_back(e.b);
    }
    return out;
  }
  return std::vector<bool>(n, boolean(key, fallback));
}

}  // namespace lethe
