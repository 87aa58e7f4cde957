// benchUnet(): times a UNet2DConditionModel built from a config file (randomly initialised, or
// with a unet folder's weights) — forward under inference mode, or forward + backward of
// mean(out²) — for `npm run bench`; `profile` writes a chrome trace of the timed iterations.
#include <torch/csrc/autograd/profiler_legacy.h>

#include <chrono>
#include <optional>

#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "bridge/device.h"
#include "bridge/torch_thread.h"
#include "models/unet_2d_condition.h"
#include "models/weights.h"

namespace lethe {

namespace {

class UnetBenchJob : public AsyncJob {
 public:
  UnetBenchJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.benchUnet", o) {
    config_path_ = o.Get("config").ToString().Utf8Value();
    batch_ = o.Get("batch").ToNumber().Int64Value();
    height_ = o.Get("height").ToNumber().Int64Value();
    width_ = o.Get("width").ToNumber().Int64Value();
    iterations_ = o.Get("iterations").ToNumber().Int64Value();
    tokens_ = o.Has("tokens") ? o.Get("tokens").ToNumber().Int64Value() : 77;
    backward_ = o.Get("backward").ToBoolean().Value();
    device_ = ParseDevice(o.Has("device") ? o.Get("device").ToString().Utf8Value() : "cpu");
    weights_dir_ = OptionString(o, "weights", "");  // a unet folder: its trained weights instead of random ones
    profile_ = OptionString(o, "profile", "");      // write a chrome trace of the timed iterations here
    if (batch_ < 1 || height_ < 1 || width_ < 1 || iterations_ < 1) fail(codes::kBadArgument, "batch, height, width, iterations must be >= 1");
  }

 protected:
  void Run() override {
    torch::manual_seed(0);
    UNet2DConditionModel unet(Config::FromFile(config_path_));
    if (!weights_dir_.empty()) LoadWeights(*unet, OpenComponentWeights(weights_dir_), weights_dir_);
    unet->to(device_);
    auto opts = torch::TensorOptions().device(device_);
    torch::Tensor x = torch::randn({batch_, unet->inChannels(), height_, width_}, opts);
    torch::Tensor ctx = torch::randn({batch_, tokens_, unet->crossAttentionDim()}, opts);
    torch::Tensor t = torch::full({1}, 500.0, opts);
    for (const auto& p : unet->parameters()) params_ += p.numel();
    auto once = [&] {
      if (backward_) {
        unet->zero_grad(/*set_to_none=*/false);  // the same as the reference: gradients stay allocated
        unet->forward(x, t, ctx).pow(2).mean().backward();
      } else {
        c10::InferenceMode guard;
        unet->forward(x, t, ctx);
      }
      if (device_.is_cuda()) torch::cuda::synchronize();
    };
    once();  // warm-up
    using clock = std::chrono::steady_clock;
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    if (!profile_.empty()) profile.emplace(profile_);
    for (int64_t i = 0; i < iterations_; ++i) {
      ThrowIfCancelled();
      auto start = clock::now();
      once();
      times_.push_back(std::chrono::duration<double>(clock::now() - start).count());
      Report({"unet", i + 1, iterations_, {{"seconds", times_.back()}}});
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("seconds", numbersToJs(env, times_));
    o.Set("parameters", Napi::Number::New(env, static_cast<double>(params_)));
    o.Set("threads", Napi::Number::New(env, TorchThreads()));
    return o;
  }

 private:
  std::string config_path_, weights_dir_, profile_;
  int64_t batch_, height_, width_, iterations_, tokens_, params_ = 0;
  bool backward_;
  torch::Device device_{torch::kCPU};
  std::vector<double> times_;
};

}  // namespace

void RegisterBench(Napi::Env env, Napi::Object exports) { exports.Set("benchUnet", Napi::Function::New<StartJob<UnetBenchJob>>(env, "benchUnet")); }

}  // namespace lethe
