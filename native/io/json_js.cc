// A probe of the native JSON reader (the one behind safetensors headers and diffusers
// config.json files), for the fuzzer (scripts/fuzz.js): parses a text and returns the value as JS,
// or throws LETHE_BAD_CHECKPOINT with the parser's reason. Not part of the public API.
#include "bindings.h"
#include "bridge/errors.h"
#include "io/json.h"

namespace lethe {

namespace {

Napi::Value toJs(Napi::Env env, const json::Value& v) {
  switch (v.kind) {
    case json::Value::Kind::Null: return env.Null();
    case json::Value::Kind::Bool: return Napi::Boolean::New(env, v.b);
    case json::Value::Kind::Int: return Napi::Number::New(env, static_cast<double>(v.i));
    case json::Value::Kind::Double: return Napi::Number::New(env, v.d);
    case json::Value::Kind::String: return Napi::String::New(env, v.s);
    case json::Value::Kind::Array: {
      Napi::Array a = Napi::Array::New(env, v.array.size());
      for (uint32_t i = 0; i < v.array.size(); ++i) a.Set(i, toJs(env, v.array[i]));
      return a;
    }
    case json::Value::Kind::Object: {
      Napi::Object o = Napi::Object::New(env);
      for (const auto& [k, x] : v.object) o.Set(Napi::String::New(env, k), toJs(env, x));
      return o;
    }
  }
  return env.Undefined();
}

Napi::Value JsonProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsBuffer()) fail(codes::kBadArgument, "jsonProbe needs a Buffer");
    auto b = info[0].As<Napi::Buffer<char>>();
    json::Value v;
    try {
      v = json::parse(b.Data(), b.Length());
    } catch (const std::runtime_error& e) {
      fail(codes::kBadCheckpoint, e.what());
    }
    return toJs(env, v);
  });
}

}  // namespace

void RegisterJson(Napi::Env env, Napi::Object exports) { exports.Set("jsonProbe", Napi::Function::New<JsonProbe>(env, "jsonProbe")); }

}  // namespace lethe
