#include "models/weights.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bridge/errors.h"
#include "io/json.h"

namespace lethe {

namespace {

std::vector<std::string> listDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) fail(codes::kBadCheckpoint, dir + ": missing component folder");
  while (dirent* e = ::readdir(d)) out.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shapeText(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string listSome(const std::vector<std::string>& items, size_t max = 5) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < max; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > max) out += " (+" + std::to_string(items.size() - max) + " more)";
  return out;
}

// Keys some exporters add that carry nothing a model needs.
bool ignorable(const std::string& key) { return endsWith(key, "position_ids"); }

}  // namespace

WeightFiles OpenComponentWeights(const std::string& dir, const std::string& variant) {
  const std::vector<std::string> names = listDir(dir);
  const std::string ext = variant.empty() ? ".safetensors" : "." + variant + ".safetensors";
  WeightFiles files;
  for (const auto& n : names) {
    if (!endsWith(n, ext + ".index.json")) continue;
    // Sharded: the index names the shards.
    std::ifstream in(dir + "/" + n);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    json::Value index;
    try {
      index = json::parse(text.data(), text.size());
    } catch (const std::exception& e) {
      fail(codes::kBadCheckpoint, dir + "/" + n + ": " + e.what());
    }
    const json::Value* map = index.find("weight_map");
    if (!map || !map->isObject()) fail(codes::kBadCheckpoint, dir + "/" + n + ": no weight_map");
    std::set<std::string> shards;
    for (const auto& [k, v] : map->object)
      if (v.isString()) shards.insert(v.s);
    for (const auto& s : shards) {
      if (s.find('/') != std::string::npos) fail(codes::kBadCheckpoint, dir + "/" + n + ": shard name '" + s + "' leaves the folder");
      files.push_back(SafetensorsFile::Open(dir + "/" + s));
    }
    return files;
  }
  for (const auto& n : names) {
    if (!endsWith(n, ext)) continue;
    if (variant.empty() && std::count(n.begin(), n.end(), '.') > 1) continue;  // e.g. model.fp16.safetensors
    files.push_back(SafetensorsFile::Open(dir + "/" + n));
  }
  if (files.empty()) {
    for (const auto& n : names)
      if (endsWith(n, ".bin") || endsWith(n, ".ckpt") || endsWith(n, ".pt") || endsWith(n, ".pth"))
        fail(codes::kBadCheckpoint, dir + "/" + n + ": only pickle weights here; pickles can run code and are refused. Convert the model once in Python: "
                                    "DiffusionPipeline.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True)");
    fail(codes::kBadCheckpoint, dir + ": no " + ext + " weights found");
  }
  return files;
}

void LoadWeights(torch::nn::Module& module, const WeightFiles& files, const std::string& component) {
  std::map<std::string, std::pair<const SafetensorsFile*, const TensorEntry*>> available;
  for (const auto& f : files)
    for (const auto& e : f->tensors()) available[e.name] = {f.get(), &e};

  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  std::vector<std::pair<torch::Tensor, std::pair<const SafetensorsFile*, const TensorEntry*>>> plan;
  auto visit = [&](const std::string& name, const torch::Tensor& target) {
    auto it = available.find(name);
    if (it == available.end()) {
      missing.push_back(name);
      return;
    }
    used.insert(name);
    const TensorEntry* e = it->second.second;
    if (c10::IntArrayRef(e->shape) != target.sizes()) {
      mismatched.push_back(name + " (weights " + shapeText(e->shape) + ", config " + shapeText(target.sizes()) + ")");
      return;
    }
    plan.emplace_back(target, it->second);
  };
  for (const auto& p : module.named_parameters(true)) visit(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) visit(b.key(), b.value());
  std::vector<std::string> unexpected;
  for (const auto& [name, _] : available)
    if (!used.count(name) && !ignorable(name)) unexpected.push_back(name);

  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::string msg = component + ": the config does not match the weights";
    if (!mismatched.empty()) msg += "; shape mismatch: " + listSome(mismatched);
    if (!missing.empty()) msg += "; missing from the weights: " + listSome(missing);
    if (!unexpected.empty()) msg += "; in the weights but not in the model: " + listSome(unexpected);
    fail(codes::kBadCheckpoint, msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, src] : plan) target.copy_(src.first->Load(*src.second));  // converts dtype as it copies
}

void SaveWeights(torch::nn::Module& module, const std::string& path, const Metadata& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : module.named_parameters(true)) tensors.emplace_back(p.key(), p.value().detach().to(torch::kFloat32));
  for (const auto& b : module.named_buffers(true)) tensors.emplace_back(b.key(), b.value());
  WriteSafetensors(path, tensors, metadata);
}

}  // namespace lethe
