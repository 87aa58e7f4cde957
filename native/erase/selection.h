// Which tensors an erasure trains, by component-qualified checkpoint keys (docs/architecture.md,
// "Parameter selection"). A selection is a list of patterns `component:glob`, e.g.
// `unet:*.attn2.to_k.*` or `text_encoder:text_model.encoder.layers.*.mlp.*`; `*` matches any run of
// characters (dots included), `?` one character; a leading `!` excludes what the pattern matches.
// A key is selected when a plain pattern matches it and no excluding one does. Presets (esd-x, …)
// are named pattern lists on the TypeScript side (src/erase/params.ts).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace lethe {

struct ParamPattern {
  bool exclude = false;
  std::string component;  // unet, text_encoder
  std::string glob;
  std::string text;  // as written, for messages
};

// The components whose tensors a selection may name.
inline const std::vector<std::string>& SelectableComponents() {
  static const std::vector<std::string> c{"unet", "text_encoder"};
  return c;
}

// Parses and checks the patterns (LETHE_BAD_ARGUMENT for a malformed one or an unknown component).
std::vector<ParamPattern> ParsePatterns(const std::vector<std::string>& patterns);

bool GlobMatch(const std::string& glob, const std::string& text);

// The selected keys per component, among `available` (component -> its parameter names in module
// order). A plain pattern that matches nothing, or a selection that ends up empty, is an error
// that lists what the model has (a selection that silently trained nothing is worse than none).
std::map<std::string, std::vector<std::string>> SelectParameters(const std::vector<ParamPattern>& patterns,
                                                                 const std::map<std::string, std::vector<std::string>>& available);

}  // namespace lethe
