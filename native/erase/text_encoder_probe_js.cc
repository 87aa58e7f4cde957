// textEncoderGradients: one forward and backward of the text encoder through the trained copy
// every erasure uses (erase/trained_model.h, every text-encoder parameter selected), for the test
// that holds its gradients to transformers' (test/fewshot.test.ts). Not a user-facing API.
//   loss = sum(states * weights), states = the text encoder's last hidden state (final norm).
#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "erase/erasure_job.h"
#include "erase/trained_model.h"

namespace lethe {

namespace {

class TextEncoderGradientsJob : public AsyncJob {
 public:
  TextEncoderGradientsJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : AsyncJob(env, "lethe.textEncoderGradients", o), m_(std::move(m)) {
    ids_ = RequireTensor(o, "ids").to(torch::kInt64);
    weights_ = RequireTensor(o, "weights").to(torch::kFloat32);
    if (ids_.dim() != 2 || weights_.dim() != 3 || weights_.size(0) != ids_.size(0) || weights_.size(1) != ids_.size(1))
      fail(codes::kShapeMismatch, "ids must be [batch, tokens] and weights [batch, tokens, hidden]");
  }
  void Run() override {
    if (!m_->text_encoder) fail(codes::kBadArgument, "this model has no text encoder");
    std::map<std::string, std::vector<std::string>> all;
    for (const auto& p : m_->text_encoder->named_parameters(true)) all["text_encoder"].push_back(p.key());
    TrainedModel trained(*m_, all);
    const torch::Tensor states = trained.textEncoder().forward(ids_.to(m_->device)).to(torch::kFloat32);
    const torch::Tensor loss = (states * weights_.to(m_->device)).sum();
    loss.backward();
    loss_ = loss.item<double>();
    states_ = states.detach().cpu();
    for (const auto& [name, p] : trained.parameters()) grads_.emplace_back(name, p.grad().defined() ? p.grad().to(torch::kFloat32).cpu() : torch::zeros_like(p).cpu());
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", Napi::Number::New(env, loss_));
    o.Set("states", tensorToJs(env, states_));
    Napi::Object g = Napi::Object::New(env);
    for (const auto& [name, t] : grads_) g.Set(name, tensorToJs(env, t));
    o.Set("grads", g);
    return o;
  }

 private:
  std::shared_ptr<SdModels> m_;
  torch::Tensor ids_, weights_, states_;
  double loss_ = 0;
  std::vector<std::pair<std::string, torch::Tensor>> grads_;
};

}  // namespace

Napi::Promise LaunchTextEncoderGradients(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object options) {
  return launch<TextEncoderGradientsJob>(env, std::move(models), options);
}

}  // namespace lethe
