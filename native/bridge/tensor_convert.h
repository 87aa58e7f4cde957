// Tensors across the boundary, always as copies: JS gets its own ArrayBuffer (Electron's memory
// cage rejects external buffers) and native code never keeps a pointer into JS memory.
// JS form: { dtype: 'float32' | ..., shape: number[], data: TypedArray }.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>

namespace lethe {

const char* dtypeName(torch::ScalarType t);                // 'float32', 'bfloat16', ...
torch::ScalarType dtypeFromName(const std::string& name);  // throws LETHE_BAD_ARGUMENT

torch::Tensor tensorFromJs(Napi::Value value, const std::string& what);
Napi::Object tensorToJs(Napi::Env env, const torch::Tensor& tensor);

Napi::Array numbersToJs(Napi::Env env, const std::vector<double>& values);

std::vector<int64_t> shapeFromJs(Napi::Value value, const std::string& what);

}  // namespace lethe
