#include "bridge/tensor_convert.h"

#include <cstring>
#include <limits>

#include "bridge/errors.h"

namespace lethe {

namespace {

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
  napi_typedarray_type array;
};

// float16/bfloat16 travel as raw bits in a Uint16Array; bool as bytes in a Uint8Array.
constexpr DtypeEntry kDtypes[] = {
    {"float32", torch::kFloat32, napi_float32_array}, {"float64", torch::kFloat64, napi_float64_array},
    {"float16", torch::kFloat16, napi_uint16_array},  {"bfloat16", torch::kBFloat16, napi_uint16_array},
    {"int64", torch::kInt64, napi_bigint64_array},    {"int32", torch::kInt32, napi_int32_array},
    {"uint8", torch::kUInt8, napi_uint8_array},       {"bool", torch::kBool, napi_uint8_array},
};

const DtypeEntry& entryFor(torch::ScalarType t) {
  for (const auto& e : kDtypes)
    if (e.type == t) return e;
  fail(codes::kBadArgument, std::string("dtype ") + c10::toString(t) + " cannot cross to JS");
}

}  // namespace

const char* dtypeName(torch::ScalarType t) { return entryFor(t).name; }

torch::ScalarType dtypeFromName(const std::string& name) {
  for (const auto& e : kDtypes)
    if (name == e.name) return e.type;
  fail(codes::kBadArgument, "unknown dtype '" + name + "' (expected float32, float64, float16, bfloat16, int64, int32, uint8 or bool)");
}

static std::string shapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::vector<int64_t> shapeFromJs(Napi::Value value, const std::string& what) {
  if (!value.IsArray()) fail(codes::kBadArgument, what + ": shape must be an array of non-negative integers");
  auto arr = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    // Bounded before the cast (casting a double past int64's range is undefined behaviour).
    if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<int64_t>(d)))
      fail(codes::kBadArgument, what + ": shape must be an array of non-negative integers");
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

torch::Tensor tensorFromJs(Napi::Value value, const std::string& what) {
  if (!value.IsObject()) fail(codes::kBadArgument, what + ": expected a tensor { dtype, shape, data }");
  auto obj = value.As<Napi::Object>();
  Napi::Value dt = obj.Get("dtype");
  std::string dtype = dt.IsString() ? dt.As<Napi::String>().Utf8Value() : "float32";
  const DtypeEntry& entry = entryFor(dtypeFromName(dtype));
  std::vector<int64_t> shape = shapeFromJs(obj.Get("shape"), what);
  Napi::Value data = obj.Get("data");
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != entry.array)
    fail(codes::kBadArgument, what + ": data must be the typed array that matches dtype " + dtype);
  auto ta = data.As<Napi::TypedArray>();
  size_t itemsize = c10::elementSize(entry.type);
  // Overflow-checked, and the non-zero dimensions bounded too: [0, 2^40, 2^40] has no elements
  // but is no shape torch can allocate metadata for.
  const int64_t limit = std::numeric_limits<int64_t>::max() / static_cast<int64_t>(itemsize);
  int64_t numel = 1, nonzero = 1;
  for (int64_t s : shape) {
    if (s != 0 && nonzero > limit / s) fail(codes::kBadArgument, what + ": shape " + shapeText(shape) + " is too large");
    if (s != 0) nonzero *= s;
    numel *= s;
  }
  if (static_cast<int64_t>(ta.ByteLength() / itemsize) != numel)
    fail(codes::kShapeMismatch, what + ": data holds " + std::to_string(ta.ByteLength() / itemsize) +
                                    " elements but shape needs " + std::to_string(numel));
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(entry.type));
  if (numel > 0) {
    const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::memcpy(t.data_ptr(), src, numel * itemsize);
  }
  return t;
}

Napi::Array numbersToJs(Napi::Env env, const std::vector<double>& values) {
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, values[i]));
  return out;
}

Napi::Object tensorToJs(Napi::Env env, const torch::Tensor& tensor) {
  torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  const DtypeEntry& entry = entryFor(t.scalar_type());
  size_t bytes = t.numel() * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  size_t length = t.numel();
  napi_value arr;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, entry.array, length, buf, 0, &arr), Napi::Object());
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  Napi::Object out = Napi::Object::New(env);
  out.Set("dtype", entry.name);
  out.Set("shape", shape);
  out.Set("data", Napi::Value(env, arr));
  return out;
}

}  // namespace lethe
