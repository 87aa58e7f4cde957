#include "erase/param_sets.h"

#include "bridge/errors.h"

namespace lethe {

namespace {
bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

const std::vector<std::string>& ParamSetNames() {
  static const std::vector<std::string> names{"esd-x", "esd-x-strict", "esd-u", "esd-self", "esd-all"};
  return names;
}

bool InParamSet(const std::string& set, const std::string& name) {
  if (set == "esd-x") return has(name, ".attn2.");
  if (set == "esd-x-strict") return has(name, ".attn2.to_k.") || has(name, ".attn2.to_v.");
  if (set == "esd-u")
    return !has(name, ".attn2.") && !startsWith(name, "time_embedding.") && !startsWith(name, "conv_norm_out.") && !startsWith(name, "conv_out.");
  if (set == "esd-self") return has(name, ".attn1.");
  if (set == "esd-all") return true;
  std::string known;
  for (const auto& n : ParamSetNames()) known += (known.empty() ? "" : ", ") + n;
  fail(codes::kBadArgument, "unknown parameter set '" + set + "' (" + known + ")");
}

}  // namespace lethe
