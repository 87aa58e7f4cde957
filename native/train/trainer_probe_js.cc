// trainerProbe: the shared training loop (train/trainer.h) on a problem small enough to check by
// hand, for the tests (test/trainer.test.ts): two optimizers, two objectives on one of them with a
// gradient edit between them, a third objective that reads both optimizers' parameters but trains
// only its own, and checkpoints of both. Not a user-facing API.
//   model optimizer: a [3], b [2]; aux optimizer: d [2]
//   unlearn  = |a - t1|^2 + |b - t2|^2       (model)
//   preserve = |a - t3|^2                    (model)
//   aux      = |d * sum(a) - t4|^2           (aux: its gradient must not reach a)
//   edit (per tensor of model): g_u and g_p conflicting (dot < 0): g_u - lambda * (g_u.g_p / |g_p|^2) g_p + g_p; else g_u + g_p.
#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "train/trainer.h"

namespace lethe {

namespace {

torch::Tensor vec(std::initializer_list<float> v) { return torch::tensor(std::vector<float>(v)); }

class TrainerProbeJob : public AsyncJob {
 public:
  TrainerProbeJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.trainerProbe", o) {
    steps_ = static_cast<int64_t>(OptionNumber(o, "steps", 1));
    stop_after_ = static_cast<int64_t>(OptionNumber(o, "stopAfter", 0));
    lambda_ = OptionNumber(o, "lambda", 1.0);
    checkpoint_ = OptionString(o, "checkpoint", "");
    resume_ = o.Get("resume").ToBoolean().Value();
  }
  void Run() override {
    torch::Tensor a = vec({0.5f, -1.0f, 2.0f}), b = vec({1.0f, 1.0f}), d = vec({0.3f, -0.2f});
    const torch::Tensor t1 = vec({1.0f, 0.0f, 1.0f}), t2 = vec({0.0f, 2.0f}), t3 = vec({0.0f, -2.0f, 3.0f}), t4 = vec({1.0f, 1.0f});
    AdamW model({{"a", a}, {"b", b}}, {0.1, 0.9, 0.999, 1e-8, 0.0});
    AdamW aux({{"aux.d", d}}, {0.05, 0.9, 0.999, 1e-8, 0.0});
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
    std::vector<OptimizerSlot> slots{{"model", &model, [](int64_t) { return 0.1; }, nullptr, 0}, {"aux", &aux, [](int64_t) { return 0.05; }, nullptr, 0}};
    slots[0].edit = [this](const std::string&, const std::vector<std::string>& names, const std::vector<torch::Tensor>& g) {
      if (names != std::vector<std::string>{"unlearn", "preserve"}) fail(codes::kInternal, "objectives arrive out of order");
      if (!g[1].defined()) return g[0];
      const double dot = (g[0] * g[1]).sum().item<double>();
      if (dot >= 0) return g[0] + g[1];
      return g[0] - lambda_ * dot / (g[1] * g[1]).sum().item<double>() * g[1] + g[1];
    };
    TrainLoop loop;
    loop.steps = steps_;
    loop.checkpointEvery = checkpoint_.empty() ? 0 : 1;
    if (resume_) {
      auto f = SafetensorsFile::Open(checkpoint_);
      auto step = [&](const std::string& k) { return f->Load(f->require(k)).item<int64_t>(); };
      model.Load(*f, "adam.model.", step("adam.model.step"));
      aux.Load(*f, "adam.aux.", step("adam.aux.step"));
      loop.step = step("step");
    }
    loop.throwIfCancelled = [this, &loop] {
      if (stop_after_ > 0 && loop.step >= stop_after_) fail(codes::kCancelled, "stopped");
    };
    loop.nextObjectives = [&] {
      Objectives o;
      o.push_back({"unlearn", (a - t1).pow(2).sum() + (b - t2).pow(2).sum(), "model"});
      o.push_back({"preserve", (a - t3).pow(2).sum(), "model"});
      o.push_back({"aux", (d * a.sum() - t4).pow(2).sum(), "aux"});
      return o;
    };
    loop.reportTerms = [&](const std::vector<std::pair<std::string, double>>& terms) {
      if (grads_.empty())
        for (const auto& [name, p] : {std::pair<std::string, torch::Tensor>{"a", a}, {"b", b}, {"d", d}}) grads_.emplace_back(name, p.grad().clone());
      for (const auto& t : terms) terms_.push_back(t.second);
    };
    loop.checkpoint = [&] {
      std::vector<std::pair<std::string, torch::Tensor>> t;
      model.Save(t, "adam.model.");
      aux.Save(t, "adam.aux.");
      t.emplace_back("adam.model.step", torch::tensor({model.step()}, torch::kInt64));
      t.emplace_back("adam.aux.step", torch::tensor({aux.step()}, torch::kInt64));
      t.emplace_back("step", torch::tensor({loop.step}, torch::kInt64));
      WriteSafetensors(checkpoint_, t, {});
    };
    loop.Run(slots);
    params_ = {{"a", a.detach().clone()}, {"b", b.detach().clone()}, {"d", d.detach().clone()}};
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Object p = Napi::Object::New(env), g = Napi::Object::New(env);
    for (const auto& [k, v] : params_) p.Set(k, tensorToJs(env, v));
    for (const auto& [k, v] : grads_) g.Set(k, tensorToJs(env, v));
    o.Set("params", p);
    o.Set("firstGrads", g);
    o.Set("terms", numbersToJs(env, terms_));
    return o;
  }

 private:
  int64_t steps_, stop_after_;
  double lambda_;
  std::string checkpoint_;
  bool resume_;
  std::vector<std::pair<std::string, torch::Tensor>> params_, grads_;
  std::vector<double> terms_;
};

// gradientSurgery(gu, gp, lambda) -> ConceptPreservingGradient on hand-made gradients. Synchronous
// on the JS thread: a test probe on a few elements, not a job.
Napi::Value GradientSurgery(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[2].IsNumber()) fail(codes::kBadArgument, "gradientSurgery(gu, gp, lambda)");
    const torch::Tensor gu = tensorFromJs(info[0], "gu").to(torch::kFloat32), gp = tensorFromJs(info[1], "gp").to(torch::kFloat32);
    return tensorToJs(info.Env(), ConceptPreservingGradient(gu, gp, info[2].As<Napi::Number>().DoubleValue()));
  });
}

}  // namespace

void RegisterTrainerProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("trainerProbe", Napi::Function::New<StartJob<TrainerProbeJob>>(env, "trainerProbe"));
  exports.Set("gradientSurgery", Napi::Function::New(env, GradientSurgery, "gradientSurgery"));
}

}  // namespace lethe
