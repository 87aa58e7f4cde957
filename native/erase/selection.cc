#include "erase/selection.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "bridge/errors.h"

namespace lethe {

std::vector<ParamPattern> ParsePatterns(const std::vector<std::string>& patterns) {
  if (patterns.empty()) fail(codes::kBadArgument, "params: give at least one pattern (e.g. unet:*.attn2.*) or a preset");
  std::vector<ParamPattern> out;
  for (const auto& text : patterns) {
    ParamPattern p;
    p.text = text;
    std::string body = text;
    if (!body.empty() && body[0] == '!') p.exclude = true, body = body.substr(1);
    const size_t colon = body.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == body.size())
      fail(codes::kBadArgument, "params: '" + text + "' is not component:pattern (e.g. unet:*.attn2.to_k.*, text_encoder:*.mlp.*)");
    p.component = body.substr(0, colon);
    p.glob = body.substr(colon + 1);
    if (p.component == "extra") fail(codes::kBadArgument, "params: '" + text + "': extra tensors are declared by the method, not selected");
    const auto& known = SelectableComponents();
    if (std::find(known.begin(), known.end(), p.component) == known.end())
      fail(codes::kBadArgument, "params: '" + text + "' names no component of a Stable Diffusion model (unet, text_encoder)");
    out.push_back(std::move(p));
  }
  if (std::none_of(out.begin(), out.end(), [](const ParamPattern& p) { return !p.exclude; }))
    fail(codes::kBadArgument, "params: only excluding patterns ('!…'); name what to train too");
  return out;
}

bool GlobMatch(const std::string& glob, const std::string& text) {
  // Iterative wildcard match with backtracking to the last '*': linear in practice, never exponential.
  size_t g = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g, ++t;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = t;
    } else if (star != std::string::npos) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

namespace {

// A component's keys summarised by their endings after the last block index ("down_blocks.0.
// attentions.0.transformer_blocks.0.attn2.to_k.weight" -> "*.attn2.to_k.weight"), for the message
// that says what a model has: short enough to read, precise enough to write a pattern from.
std::string DescribeKeys(const std::string& component, const std::vector<std::string>& keys) {
  std::vector<std::string> endings;
  std::set<std::string> seen;
  for (const auto& k : keys) {
    size_t cut = std::string::npos;
    for (size_t i = 0; i + 1 < k.size(); ++i)
      if (k[i] == '.' && std::isdigit(static_cast<unsigned char>(k[i + 1]))) {
        size_t j = i + 1;
        while (j < k.size() && std::isdigit(static_cast<unsigned char>(k[j]))) ++j;
        if (j < k.size() && k[j] == '.') cut = j + 1;
      }
    const std::string e = cut == std::string::npos ? k : "*." + k.substr(cut);
    if (seen.insert(e).second) endings.push_back(e);
  }
  std::string out = component + " (" + std::to_string(keys.size()) + " tensors, by ending): ";
  const size_t shown = std::min<size_t>(endings.size(), 80);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + endings[i];
  if (shown < endings.size()) out += ", … (" + std::to_string(endings.size() - shown) + " more)";
  return out;
}

std::string DescribeModel(const std::map<std::string, std::vector<std::string>>& available) {
  std::string out;
  for (const auto& [component, keys] : available) out += (out.empty() ? "" : "; ") + DescribeKeys(component, keys);
  return out;
}

}  // namespace

std::map<std::string, std::vector<std::string>> SelectParameters(const std::vector<ParamPattern>& patterns,
                                                                 const std::map<std::string, std::vector<std::string>>& available) {
  std::map<std::string, std::vector<std::string>> selected;
  for (const auto& p : patterns) {
    if (p.exclude) continue;
    auto it = available.find(p.component);
    const bool hit = it != available.end() && std::any_of(it->second.begin(), it->second.end(), [&](const std::string& k) { return GlobMatch(p.glob, k); });
    if (!hit)
      fail(codes::kBadArgument, "params: '" + p.text + "' matches no tensor of this model" +
                                    (it == available.end() ? " (it has no " + p.component + " loaded)" : "") + ". The model has " + DescribeModel(available));
  }
  size_t total = 0;
  for (const auto& [component, keys] : available) {
    for (const auto& k : keys) {
      bool in = false;
      for (const auto& p : patterns)
        if (p.component == component && GlobMatch(p.glob, k)) {
          if (p.exclude) {
            in = false;
            break;
          }
          in = true;
        }
      if (in) selected[component].push_back(k), ++total;
    }
  }
  if (total == 0) {
    std::string list;
    for (const auto& p : patterns) list += (list.empty() ? "" : ",") + p.text;
    fail(codes::kBadArgument, "params: '" + list + "' selects nothing once its exclusions apply. The model has " + DescribeModel(available));
  }
  return selected;
}

}  // namespace lethe
