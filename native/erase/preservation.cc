#include "erase/preservation.h"

#include <algorithm>

#include "bridge/errors.h"

namespace lethe {

StateWeighting ParseStateWeighting(const std::string& name) {
  if (name == "tokens") return StateWeighting::kTokens;
  if (name == "text-padding") return StateWeighting::kTextPadding;
  fail(codes::kBadArgument, "projectionWeighting must be 'tokens' or 'text-padding', got '" + name + "'");
}

torch::Tensor StateWeights(const torch::Tensor& ids, StateWeighting weighting) {
  const torch::Tensor rows = ids.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = rows.size(0), tokens = rows.size(1);
  torch::Tensor w = torch::full({n, tokens}, 1.0 / static_cast<double>(tokens), torch::kFloat64);
  if (weighting == StateWeighting::kTokens) return w;
  auto id = rows.accessor<int64_t, 2>();
  auto out = w.accessor<double, 2>();
  for (int64_t i = 0; i < n; i++) {
    int64_t text = tokens - 1;  // the last position whose id is not the padding's
    while (text > 0 && id[i][text] == id[i][tokens - 1]) text--;
    text = std::min(text + 2, tokens);
    const int64_t padding = tokens - text;
    for (int64_t t = 0; t < tokens; t++)
      out[i][t] = padding == 0 ? 1.0 / static_cast<double>(tokens) : t < text ? 0.5 / static_cast<double>(text) : 0.5 / static_cast<double>(padding);
  }
  return w;
}

torch::Tensor PreservationMap(const PromptStates& erased, const PromptStates& kept, double weight, StateWeighting weighting) {
  auto secondMoment = [&](const PromptStates& set) {
    if (set.ids.size(0) != set.states.size(0) || set.ids.size(1) != set.states.size(1)) fail(codes::kInternal, "prompt states and ids disagree");
    torch::Tensor s = set.states.to(torch::kCPU, torch::kFloat64);
    s = s.reshape({-1, s.size(-1)});
    if (weighting == StateWeighting::kTokens) return s.t().mm(s) / static_cast<double>(s.size(0));  // the plain mean, as before the option
    const torch::Tensor w = StateWeights(set.ids, weighting).reshape({-1, 1});
    return (s * w).t().mm(s) / w.sum().item<double>();
  };
  torch::Tensor ae = secondMoment(erased), ap = secondMoment(kept);
  const int64_t dim = ae.size(0);
  torch::Tensor m = ae + weight * ap + (1e-3 * ae.trace().item<double>() / dim) * torch::eye(dim, torch::kFloat64);
  return torch::linalg_solve(m, ae).t();  // (M^-1 Ae)^T = Ae M^-1: both are symmetric
}

bool ReadsTextStates(const std::string& name) {
  auto endsWith = [&](const std::string& tail) { return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0; };
  return endsWith(".attn2.to_k.weight") || endsWith(".attn2.to_v.weight");
}

void CheckPreservationApplies(int64_t keptPrompts, const std::vector<std::pair<std::string, torch::Tensor>>& trained, const std::string& remedy) {
  if (keptPrompts == 0) fail(codes::kBadArgument, "preserveProjection needs the prompts it keeps (projectionKeep)");
  if (std::none_of(trained.begin(), trained.end(), [](const auto& e) { return ReadsTextStates(e.first); }))
    fail(codes::kBadArgument, "preserveProjection acts on attn2.to_k / to_v, which this parameter selection does not train" + remedy);
}

void ApplyPreservation(std::vector<std::pair<std::string, torch::Tensor>>& delta, const PromptStates& erased, const PromptStates& kept, double weight,
                       StateWeighting weighting) {
  torch::NoGradGuard ng;
  const torch::Tensor map = PreservationMap(erased, kept, weight, weighting);
  for (auto& [name, d] : delta)
    if (ReadsTextStates(name)) d = d.to(torch::kFloat64).mm(map).to(torch::kFloat32);
}

}  // namespace lethe
