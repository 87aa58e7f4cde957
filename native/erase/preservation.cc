#include "erase/preservation.h"

#include <algorithm>

#include "bridge/errors.h"

namespace lethe {

torch::Tensor PreservationMap(const torch::Tensor& erased, const torch::Tensor& kept, double weight) {
  auto secondMoment = [](const torch::Tensor& states) {
    torch::Tensor s = states.to(torch::kCPU, torch::kFloat64);
    s = s.reshape({-1, s.size(-1)});
    return s.t().mm(s) / static_cast<double>(s.size(0));
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

void ApplyPreservation(std::vector<std::pair<std::string, torch::Tensor>>& delta, const torch::Tensor& erased, const torch::Tensor& kept, double weight) {
  torch::NoGradGuard ng;
  const torch::Tensor map = PreservationMap(erased, kept, weight);
  for (auto& [name, d] : delta)
    if (ReadsTextStates(name)) d = d.to(torch::kFloat64).mm(map).to(torch::kFloat32);
}

}  // namespace lethe
