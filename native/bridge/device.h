// Device and compute-dtype arguments, validated once for every job that takes them.
#pragma once
#include <torch/torch.h>

#include <string>

namespace lethe {

torch::Device ParseDevice(const std::string& spec);  // cpu, cuda, cuda:N; LETHE_DEVICE if absent
// float32, bfloat16, float16 (refused on CPU: its half kernels are slow or missing).
torch::ScalarType ParseComputeDtype(const std::string& name, const torch::Device& device);

}  // namespace lethe
