#include "bridge/device.h"

#include "bridge/errors.h"

namespace lethe {

torch::Device ParseDevice(const std::string& spec) {
  std::optional<torch::Device> d;
  try {
    d.emplace(spec);
  } catch (const c10::Error&) {
    fail(codes::kDevice, "unknown device '" + spec + "' (expected cpu, cuda or cuda:N)");
  }
  if (d->is_cuda()) {
    if (!torch::cuda::is_available()) fail(codes::kDevice, "device '" + spec + "' asked for, but CUDA is not available here (use 'cpu')");
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (d->has_index() && d->index() >= count)
      fail(codes::kDevice, "device '" + spec + "' does not exist: " + std::to_string(count) + " CUDA device(s)");
  } else if (!d->is_cpu()) {
    fail(codes::kDevice, "device '" + spec + "' is not supported (expected cpu, cuda or cuda:N)");
  }
  return *d;
}

torch::ScalarType ParseComputeDtype(const std::string& name, const torch::Device& device) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") {
    if (device.is_cpu()) fail(codes::kBadArgument, "float16 is not supported on CPU (use bfloat16 or float32)");
    return torch::kFloat16;
  }
  fail(codes::kBadArgument, "dtype must be float32, bfloat16 or float16, not '" + name + "'");
}

}  // namespace lethe
