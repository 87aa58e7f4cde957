#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bridge/errors.h"

namespace lethe {

NamedParams SelectParameters(torch::nn::Module& module, const std::string& prefix, const std::function<bool(const std::string&)>& keep) {
  NamedParams out;
  for (const auto& p : module.named_parameters(true))
    if (keep(p.key())) out.emplace_back(prefix + p.key(), p.value());
  return out;
}

AdamW::AdamW(NamedParams params, AdamWOptions options) : params_(std::move(params)), o_(options) {
  for (auto& [_, p] : params_) {
    p.set_requires_grad(true);
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

void AdamW::ZeroGrad() {
  for (auto& [_, p] : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

void AdamW::Step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(o_.beta2, static_cast<double>(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    torch::Tensor g = p.grad();
    if (o_.weight_decay != 0 && o_.decoupled) p.mul_(1 - lr * o_.weight_decay);
    if (o_.weight_decay != 0 && !o_.decoupled) g = g + o_.weight_decay * p;
    m_[i].mul_(o_.beta1).add_(g, 1 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
    torch::Tensor denom = (v_[i] / bc2).sqrt_().add_(o_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

void AdamW::Save(std::vector<std::pair<std::string, torch::Tensor>>& out, const std::string& prefix) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("param." + params_[i].first, params_[i].second.detach());
    out.emplace_back(prefix + "m." + params_[i].first, m_[i]);
    out.emplace_back(prefix + "v." + params_[i].first, v_[i]);
  }
}

void AdamW::Load(const SafetensorsFile& file) { Load(file, "adam.", MetadataInt(file.metadata(), "step", file.path())); }

void AdamW::Load(const SafetensorsFile& file, const std::string& prefix, int64_t step) {
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& key, torch::Tensor& dst) {
    const TensorEntry* e = file.find(key);
    if (!e) fail(codes::kBadCheckpoint, file.path() + ": checkpoint lacks " + key + " (was it written for another method or parameter set?)");
    torch::Tensor t = file.Load(*e);
    if (t.sizes() != dst.sizes()) fail(codes::kBadCheckpoint, file.path() + ": " + key + " has another shape than the model's");
    dst.copy_(t);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    copy("param." + params_[i].first, params_[i].second);
    copy(prefix + "m." + params_[i].first, m_[i]);
    copy(prefix + "v." + params_[i].first, v_[i]);
  }
  step_ = step;
}

void CheckFiniteLoss(const torch::Tensor& loss, int64_t step, const std::string& name) {
  const double v = loss.item<double>();
  if (!std::isfinite(v))
    fail(codes::kNonFinite, "the " + (name.empty() ? std::string("loss") : "loss '" + name + "'") + " became " + (std::isnan(v) ? "NaN" : "Inf") + " at step " +
                                std::to_string(step) + "; nothing was written. Lower the learning rate or use float32.");
}

void TrainLoop::Run(AdamW& opt) {
  std::vector<OptimizerSlot> slots{{"", &opt, lr, nullptr, 0, 0}};
  step = opt.step();
  Run(slots);
}

void ClipGradNorm(const NamedParams& params, double maxNorm) {
  torch::NoGradGuard ng;
  double sq = 0;
  for (const auto& [_, p] : params)
    if (p.grad().defined()) sq += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
  const double coef = maxNorm / (std::sqrt(sq) + 1e-6);
  if (coef < 1)
    for (const auto& [_, p] : params)
      if (p.grad().defined()) p.mutable_grad().mul_(coef);
}

torch::Tensor ConceptPreservingGradient(const torch::Tensor& gu, const torch::Tensor& gp, double lambda) {
  if (!gu.defined() || !gp.defined()) return gu;
  torch::NoGradGuard ng;
  // The reference: a = g_u / (|g_u| + 1e-8), b = g_p / (|g_p| + 1e-8), dot = a . b.
  const torch::Tensor b = gp / (gp.norm() + 1e-8);
  const double dot = ((gu / (gu.norm() + 1e-8)) * b).sum().item<double>();
  return dot < 0 ? gu - lambda * dot * b : gu;
}

namespace {

// Clips a list of gradients (undefined entries skipped) to a total L2 norm of `maxNorm`, as ClipGradNorm.
void ClipGradList(std::vector<torch::Tensor>& grads, double maxNorm) {
  torch::NoGradGuard ng;
  double sq = 0;
  for (const auto& g : grads)
    if (g.defined()) sq += g.to(torch::kFloat64).pow(2).sum().item<double>();
  const double coef = maxNorm / (std::sqrt(sq) + 1e-6);
  if (coef < 1)
    for (auto& g : grads)
      if (g.defined()) g = g * coef;
}

// The gradients of `loss` for every parameter of `opt`, as a list (undefined where it does not reach).
std::vector<torch::Tensor> GradientsOf(const torch::Tensor& loss, const AdamW& opt) {
  std::vector<torch::Tensor> inputs;
  for (const auto& [_, p] : opt.params()) inputs.push_back(p);
  return torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
}

}  // namespace

void TrainLoop::Run(std::vector<OptimizerSlot>& optimizers) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  if (optimizers.empty()) fail(codes::kInternal, "a training loop needs an optimizer");
  // The slots an objective trains: "" is the first; several names are comma-separated.
  auto slotsOf = [&](const Objective& o) -> std::vector<size_t> {
    if (o.optimizer.empty()) return {0};
    std::vector<size_t> out;
    size_t from = 0;
    while (from <= o.optimizer.size()) {
      const size_t comma = std::min(o.optimizer.find(',', from), o.optimizer.size());
      const std::string name = o.optimizer.substr(from, comma - from);
      size_t i = 0;
      while (i < optimizers.size() && optimizers[i].name != name) ++i;
      if (i == optimizers.size()) fail(codes::kInternal, "objective '" + o.name + "' names no optimizer '" + name + "'");
      out.push_back(i);
      from = comma + 1;
    }
    return out;
  };
  while (step < steps) {
    if (throwIfCancelled) throwIfCancelled();
    Objectives objectives = nextObjectives ? nextObjectives() : Objectives{{"loss", nextLoss(), ""}};
    if (objectives.empty()) fail(codes::kInternal, "a training step returned no objective");
    for (const auto& o : objectives) CheckFiniteLoss(o.loss, step, objectives.size() > 1 ? o.name : "");
    auto t0 = Clock::now();
    std::vector<std::vector<const Objective*>> bySlot(optimizers.size());
    for (const auto& o : objectives)
      for (size_t i : slotsOf(o)) bySlot[i].push_back(&o);
    const bool plain = optimizers.size() == 1 && !(optimizers[0].edit && bySlot[0].size() > 1);
    if (plain) {
      // One optimizer, no edit: one backward of the sum (the bundled-model trainers' and ESD's path).
      torch::Tensor total = bySlot[0][0]->loss;
      for (size_t k = 1; k < bySlot[0].size(); ++k) total = total + bySlot[0][k]->loss;
      optimizers[0].opt->ZeroGrad();
      total.backward();
    } else {
      // Every gradient is taken before any parameter changes: the objectives may share a graph.
      std::vector<std::vector<torch::Tensor>> grads(optimizers.size());
      for (size_t i = 0; i < optimizers.size(); ++i) {
        const auto& mine = bySlot[i];
        if (mine.empty()) continue;
        const AdamW& opt = *optimizers[i].opt;
        if (optimizers[i].edit && mine.size() > 1) {
          std::vector<std::string> names;
          std::vector<std::vector<torch::Tensor>> each;
          for (const auto* o : mine) {
            names.push_back(o->name);
            each.push_back(GradientsOf(o->loss, opt));
            if (optimizers[i].clipObjectiveNorm > 0) ClipGradList(each.back(), optimizers[i].clipObjectiveNorm);
          }
          for (size_t j = 0; j < opt.params().size(); ++j) {
            std::vector<torch::Tensor> per;
            for (const auto& g : each) per.push_back(g[j]);
            grads[i].push_back(optimizers[i].edit(opt.params()[j].first, names, per));
          }
        } else {
          torch::Tensor total = mine[0]->loss;
          for (size_t k = 1; k < mine.size(); ++k) total = total + mine[k]->loss;
          grads[i] = GradientsOf(total, opt);
        }
      }
      for (size_t i = 0; i < optimizers.size(); ++i) {
        if (grads[i].empty()) continue;
        const auto& params = optimizers[i].opt->params();
        for (size_t j = 0; j < params.size(); ++j) {
          torch::Tensor p = params[j].second;
          p.mutable_grad() = grads[i][j].defined() ? grads[i][j].detach() : torch::Tensor();
        }
      }
    }
    backwardSeconds += seconds(t0);
    t0 = Clock::now();
    for (size_t i = 0; i < optimizers.size(); ++i) {
      if (bySlot[i].empty()) continue;  // nothing trained it this step
      if (optimizers[i].clipGradNorm > 0) ClipGradNorm(optimizers[i].opt->params(), optimizers[i].clipGradNorm);
      optimizers[i].opt->Step(optimizers[i].lr(step));
    }
    optimizerSeconds += seconds(t0);
    ++step;
    if (afterStep) afterStep();
    if (report || reportTerms) {
      std::vector<std::pair<std::string, double>> terms;
      double total = 0;
      for (const auto& o : objectives) {
        terms.emplace_back(o.name, o.loss.item<double>());
        total += terms.back().second;
      }
      if (reportTerms) reportTerms(terms);
      if (report) report(total);
    }
    if (checkpoint && checkpointEvery > 0 && (step % checkpointEvery == 0 || step == steps)) checkpoint();
  }
}

std::string MetadataValue(const Metadata& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  fail(codes::kBadCheckpoint, "checkpoint metadata lacks '" + key + "'");
}

int64_t MetadataInt(const Metadata& m, const std::string& key, const std::string& path) {
  const std::string v = MetadataValue(m, key);
  // Whole string, decimal, non-negative, in range: std::stoll would accept "12abc" and throw
  // std::invalid_argument (LETHE_INTERNAL) on "abc".
  int64_t out = 0;
  bool ok = !v.empty() && v.size() <= 18;
  for (char c : v) ok = ok && c >= '0' && c <= '9';
  if (ok) for (char c : v) out = out * 10 + (c - '0');
  if (!ok) fail(codes::kBadCheckpoint, path + ": checkpoint metadata '" + key + "' is '" + v.substr(0, 40) + "', not a non-negative integer");
  return out;
}

void Checkpoint::Save(const std::string& path, const AdamW& opt, const at::Generator& gen, const Metadata& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  opt.Save(tensors);
  tensors.emplace_back("rng", gen.get_state());
  Metadata meta = metadata;
  meta.emplace_back("step", std::to_string(opt.step()));
  WriteSafetensors(path, tensors, meta);
}

Metadata Checkpoint::Load(const std::string& path, AdamW& opt, at::Generator& gen) {
  auto file = SafetensorsFile::Open(path);
  opt.Load(*file);
  gen.set_state(file->Load(file->require("rng", "the generator state")));
  return file->metadata();
}

}  // namespace lethe
