// JS bindings for safetensors: a synchronous header read (cheap: the data is not touched) and
// asynchronous load/save jobs.
#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/tensor_convert.h"
#include "io/safetensors.h"

namespace lethe {

namespace {

std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) fail(codes::kBadArgument, std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Object optionsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsObject()) return info[i].As<Napi::Object>();
  return Napi::Object::New(info.Env());
}

Napi::Value ReadHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto file = SafetensorsFile::Open(stringArg(info, 0, "path"));
    Napi::Object out = Napi::Object::New(env);
    Napi::Object meta = Napi::Object::New(env);
    for (const auto& [k, v] : file->metadata()) meta.Set(Napi::String::New(env, k), Napi::String::New(env, v));  // keys by length: a NUL inside must not cut them
    Napi::Array list = Napi::Array::New(env, file->tensors().size());
    uint32_t i = 0;
    for (const auto& e : file->tensors()) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", e.name);
      t.Set("dtype", dtypeName(e.type));
      t.Set("storedDtype", e.dtype);
      Napi::Array shape = Napi::Array::New(env, e.shape.size());
      for (uint32_t d = 0; d < e.shape.size(); ++d) shape.Set(d, Napi::Number::New(env, static_cast<double>(e.shape[d])));
      t.Set("shape", shape);
      t.Set("byteOffset", Napi::Number::New(env, static_cast<double>(e.begin)));
      t.Set("byteLength", Napi::Number::New(env, static_cast<double>(e.end - e.begin)));
      list.Set(i++, t);
    }
    out.Set("metadata", meta);
    out.Set("tensors", list);
    out.Set("headerBytes", Napi::Number::New(env, static_cast<double>(file->headerBytes())));
    out.Set("fileBytes", Napi::Number::New(env, static_cast<double>(file->fileBytes())));
    return out;
  });
}

class LoadJob : public AsyncJob {
 public:
  LoadJob(Napi::Env env, std::string path, std::vector<std::string> names, Napi::Object options)
      : AsyncJob(env, "lethe.loadSafetensors", options), path_(std::move(path)), names_(std::move(names)) {}

 protected:
  void Run() override {
    auto file = SafetensorsFile::Open(path_);
    std::vector<const TensorEntry*> wanted;
    if (names_.empty()) {
      for (const auto& e : file->tensors()) wanted.push_back(&e);
    } else {
      for (const auto& n : names_) {
        const TensorEntry* e = file->find(n);
        if (!e) fail(codes::kBadCheckpoint, path_ + ": no tensor named '" + n + "'");
        wanted.push_back(e);
      }
    }
    int64_t step = 0;
    for (const auto* e : wanted) {
      ThrowIfCancelled();
      loaded_.emplace_back(e->name, file->Load(*e));
      Report({"load", ++step, static_cast<int64_t>(wanted.size()), {}});
    }
    metadata_ = file->metadata();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object tensors = Napi::Object::New(env);
    for (const auto& [name, t] : loaded_) tensors.Set(Napi::String::New(env, name), tensorToJs(env, t));
    Napi::Object meta = Napi::Object::New(env);
    for (const auto& [k, v] : metadata_) meta.Set(Napi::String::New(env, k), Napi::String::New(env, v));
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", tensors);
    out.Set("metadata", meta);
    return out;
  }

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::vector<std::pair<std::string, torch::Tensor>> loaded_;
  Metadata metadata_;
};

Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string path = stringArg(info, 0, "path");
    Napi::Object options = optionsArg(info, 1);
    std::vector<std::string> names;
    Napi::Value n = options.Get("names");
    if (n.IsArray()) {
      auto arr = n.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) names.push_back(arr.Get(i).ToString().Utf8Value());
    }
    return launch<LoadJob>(env, std::move(path), std::move(names), options);
  });
}

class SaveJob : public AsyncJob {
 public:
  SaveJob(Napi::Env env, std::string path, std::vector<std::pair<std::string, torch::Tensor>> tensors, Metadata metadata,
          Napi::Object options)
      : AsyncJob(env, "lethe.saveSafetensors", options),
        path_(std::move(path)), tensors_(std::move(tensors)), metadata_(std::move(metadata)) {}

 protected:
  void Run() override { WriteSafetensors(path_, tensors_, metadata_); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string path_;
  std::vector<std::pair<std::string, torch::Tensor>> tensors_;
  Metadata metadata_;
};

Napi::Value Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string path = stringArg(info, 0, "path");
    if (info.Length() < 2 || !info[1].IsObject()) fail(codes::kBadArgument, "tensors must be an object of name -> tensor");
    auto obj = info[1].As<Napi::Object>();
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    Napi::Array keys = obj.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      // Looked up by the key value, not its C string: a name may hold a NUL.
      Napi::Value key = keys.Get(i);
      std::string name = key.ToString().Utf8Value();
      tensors.emplace_back(name, tensorFromJs(obj.Get(key), "tensor '" + name + "'"));
    }
    Metadata metadata;
    Napi::Object options = optionsArg(info, 2);
    Napi::Value m = options.Get("metadata");
    if (m.IsObject()) {
      auto mo = m.As<Napi::Object>();
      Napi::Array mk = mo.GetPropertyNames();
      for (uint32_t i = 0; i < mk.Length(); ++i) {
        Napi::Value key = mk.Get(i);
        std::string k = key.ToString().Utf8Value();
        Napi::Value v = mo.Get(key);
        if (!v.IsString()) fail(codes::kBadArgument, "metadata." + k + " must be a string");
        metadata.emplace_back(k, v.As<Napi::String>().Utf8Value());
      }
    }
    return launch<SaveJob>(env, std::move(path), std::move(tensors), std::move(metadata), options);
  });
}

}  // namespace

void RegisterSafetensors(Napi::Env env, Napi::Object exports) {
  exports.Set("readSafetensorsHeader", Napi::Function::New<ReadHeader>(env, "readSafetensorsHeader"));
  exports.Set("loadSafetensors", Napi::Function::New<Load>(env, "loadSafetensors"));
  exports.Set("saveSafetensors", Napi::Function::New<Save>(env, "saveSafetensors"));
}

}  // namespace lethe
