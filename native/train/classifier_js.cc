// The classifier's jobs: trainClassifier (rendered images + labels -> weights, resumable) and
// classify (images -> per-head probabilities). Labels of -1 are ignored (e.g. a poster's shape).
#include <cmath>

#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "models/shapes_classifier.h"
#include "models/weights.h"
#include "train/trainer.h"

namespace lethe {

namespace {

// uint8 HWC or float CHW in [0, 1] -> float [B, 3, H, W] in [0, 1]
torch::Tensor asImages(const torch::Tensor& t) {
  if (t.dim() != 4) fail(codes::kShapeMismatch, "images must be [n, 64, 64, 3] uint8 or [n, 3, 64, 64] float in [0, 1]");
  if (t.scalar_type() == torch::kUInt8) return t.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
  return t.to(torch::kFloat32);
}

class TrainClassifierJob : public AsyncJob {
 public:
  TrainClassifierJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.trainClassifier", o) {
    dir_ = RequireString(o, "dir");
    images_ = tensorFromJs(o.Get("images"), "images");
    labels_ = tensorFromJs(o.Get("labels"), "labels").to(torch::kLong);  // [N, 4]: shape, color, style, poster
    steps_ = static_cast<int64_t>(OptionNumber(o, "steps", 2000));
    batch_ = static_cast<int64_t>(OptionNumber(o, "batch", 64));
    lr_ = OptionNumber(o, "lr", 2e-3);
    seed_ = static_cast<uint64_t>(OptionNumber(o, "seed", 0));
    checkpoint_ = RequireString(o, "checkpoint");
    if (labels_.dim() != 2 || labels_.size(1) != 4 || labels_.size(0) != images_.size(0)) fail(codes::kShapeMismatch, "labels must be [n, 4]");
  }
  void Run() override {
    torch::manual_seed(seed_);
    ShapesClassifier net(Config::FromFile(dir_ + "/config.json"));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ + 1);
    AdamW opt(SelectParameters(*net, "classifier.", [](const std::string&) { return true; }), {lr_, 0.9, 0.999, 1e-8, 1e-4});
    if (FileExists(checkpoint_)) Checkpoint::Load(checkpoint_, opt, gen);
    net->train();
    const int64_t n = images_.size(0);
    TrainLoop loop;
    loop.steps = steps_;
    loop.checkpointEvery = 250;
    loop.lr = [this](int64_t step) { return lr_ * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / steps_)); };  // cosine decay
    loop.throwIfCancelled = [this] { ThrowIfCancelled(); };
    loop.nextLoss = [&] {
      torch::Tensor idx = torch::randint(n, {batch_}, gen, torch::kLong);
      auto out = net->forward(asImages(images_.index_select(0, idx)));
      torch::Tensor y = labels_.index_select(0, idx);
      auto ce = [](const torch::Tensor& logits, const torch::Tensor& target) {
        return torch::nn::functional::cross_entropy(logits, target, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));
      };
      return ce(out.shape, y.select(1, 0)) + ce(out.color, y.select(1, 1)) + ce(out.style, y.select(1, 2)) + ce(out.poster, y.select(1, 3));
    };
    loop.report = [&](double loss) {
      loss_ = loss;
      Report({"classifier", opt.step(), steps_, {{"loss", loss_}}});
    };
    loop.checkpoint = [&] { Checkpoint::Save(checkpoint_, opt, gen, {{"phase", "classifier"}}); };
    loop.Run(opt);
    net->eval();
    SaveWeights(*net, dir_ + "/model.safetensors");
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, loss_); }

 private:
  std::string dir_, checkpoint_;
  torch::Tensor images_, labels_;
  int64_t steps_, batch_;
  double lr_, loss_ = 0;
  uint64_t seed_;
};

class ClassifyJob : public AsyncJob {
 public:
  ClassifyJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.classify", o) {
    dir_ = RequireString(o, "dir");
    images_ = tensorFromJs(o.Get("images"), "images");
  }
  void Run() override {
    c10::InferenceMode guard;
    ShapesClassifier net(Config::FromFile(dir_ + "/config.json"));
    LoadWeights(*net, OpenComponentWeights(dir_), dir_);
    net->eval();
    torch::Tensor x = asImages(images_);
    if (x.size(1) != 3 || x.size(2) != net->imageSize() || x.size(3) != net->imageSize())
      fail(codes::kShapeMismatch, "the classifier takes " + std::to_string(net->imageSize()) + "×" + std::to_string(net->imageSize()) + " RGB images");
    std::vector<torch::Tensor> s, c, st, p;
    for (int64_t i = 0; i < x.size(0); i += 256) {
      ThrowIfCancelled();
      auto out = net->forward(x.slice(0, i, std::min(x.size(0), i + 256)));
      s.push_back(torch::softmax(out.shape, 1));
      c.push_back(torch::softmax(out.color, 1));
      st.push_back(torch::softmax(out.style, 1));
      p.push_back(torch::softmax(out.poster, 1));
    }
    shape_ = torch::cat(s);
    color_ = torch::cat(c);
    style_ = torch::cat(st);
    poster_ = torch::cat(p);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("shape", tensorToJs(env, shape_));
    o.Set("color", tensorToJs(env, color_));
    o.Set("style", tensorToJs(env, style_));
    o.Set("poster", tensorToJs(env, poster_));
    return o;
  }

 private:
  std::string dir_;
  torch::Tensor images_, shape_, color_, style_, poster_;
};

}  // namespace

void RegisterClassifier(Napi::Env env, Napi::Object exports) {
  exports.Set("trainClassifier", Napi::Function::New<StartJob<TrainClassifierJob>>(env, "trainClassifier"));
  exports.Set("classify", Napi::Function::New<StartJob<ClassifyJob>>(env, "classify"));
}

}  // namespace lethe
