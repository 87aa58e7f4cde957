// Which UNet parameters an erasure method trains, by diffusers names (listed in the README).
#pragma once
#include <string>
#include <vector>

namespace lethe {

// esd-x: cross-attention (attn2.*); esd-x-strict: attn2.to_k / attn2.to_v; esd-u: all but attn2,
// the time embedding and the output layers (conv_norm_out, conv_out); esd-self: attn1.*; esd-all.
const std::vector<std::string>& ParamSetNames();
bool InParamSet(const std::string& set, const std::string& name);  // throws LETHE_BAD_ARGUMENT for an unknown set

}  // namespace lethe
