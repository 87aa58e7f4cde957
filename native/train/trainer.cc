#include "train/trainer.h"

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
    const torch::Tensor& g = p.grad();
    if (o_.weight_decay != 0) p.mul_(1 - lr * o_.weight_decay);
    m_[i].mul_(o_.beta1).add_(g, 1 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
    torch::Tensor denom = (v_[i] / bc2).sqrt_().add_(o_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

void AdamW::Save(std::vector<std::pair<std::string, torch::Tensor>>& out) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("param." + params_[i].first, params_[i].second.detach());
    out.emplace_back("adam.m." + params_[i].first, m_[i]);
    out.emplace_back("adam.v." + params_[i].first, v_[i]);
  }
}

void AdamW::Load(const SafetensorsFile& file) {
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
    copy("adam.m." + params_[i].first, m_[i]);
    copy("adam.v." + params_[i].first, v_[i]);
  }
  step_ = std::stoll(MetadataValue(file.metadata(), "step"));
}

void CheckFiniteLoss(const torch::Tensor& loss, int64_t step) {
  const double v = loss.item<double>();
  if (!std::isfinite(v))
    fail(codes::kNonFinite, "the loss became " + std::string(std::isnan(v) ? "NaN" : "Inf") + " at step " + std::to_string(step) +
                                "; nothing was written. Lower the learning rate or use float32.");
}

void TrainLoop::Run(AdamW& opt) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  while (opt.step() < steps) {
    if (throwIfCancelled) throwIfCancelled();
    torch::Tensor loss = nextLoss();
    CheckFiniteLoss(loss, opt.step());
    auto t0 = Clock::now();
    opt.ZeroGrad();
    loss.backward();
    backwardSeconds += seconds(t0);
    t0 = Clock::now();
    opt.Step(lr(opt.step()));
    optimizerSeconds += seconds(t0);
    if (afterStep) afterStep();
    if (report) report(loss.item<double>());
    if (checkpoint && checkpointEvery > 0 && (opt.step() % checkpointEvery == 0 || opt.step() == steps)) checkpoint();
  }
}

std::string MetadataValue(const Metadata& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  fail(codes::kBadCheckpoint, "checkpoint metadata lacks '" + key + "'");
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
  const TensorEntry* rng = file->find("rng");
  if (!rng) fail(codes::kBadCheckpoint, path + ": checkpoint lacks the generator state");
  gen.set_state(file->Load(*rng));
  return file->metadata();
}

}  // namespace lethe
