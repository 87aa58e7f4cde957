// Weights of a diffusers component folder into a module, name for name (docs/architecture.md, "Models"): parameter
// names equal the checkpoint's keys, so loading is a copy and a mismatch is reported by key.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace lethe {

using WeightFiles = std::vector<std::unique_ptr<SafetensorsFile>>;

// The safetensors of a component folder: a sharded index, or the single weights file. Pickle-only
// folders are refused with a message saying how to convert.
WeightFiles OpenComponentWeights(const std::string& dir, const std::string& variant = "");

// Copies every parameter and buffer of `module` from `files`. Missing keys, unexpected keys and
// shape mismatches are all collected and reported together (LETHE_BAD_CHECKPOINT).
void LoadWeights(torch::nn::Module& module, const WeightFiles& files, const std::string& component);

// Writes every parameter and buffer of `module` under its diffusers name, atomically.
void SaveWeights(torch::nn::Module& module, const std::string& path, const Metadata& metadata = {});

}  // namespace lethe
