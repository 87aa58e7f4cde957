// Lethe's closed-form preservation of cross-attention key/value deltas (not in any method's
// reference; ESD and Concept Ablation offer it as `preserveProjection`). attn2.to_k / to_v read
// the text encoder's token states directly, so for a delta D of such a weight the least-squares
// choice
//   argmin_D'  mean_e |D' s_e - D s_e|^2 + a * mean_p |D' s_p|^2 + r |D'|^2
// over the erased prompts' token states s_e and the kept prompts' s_p keeps what training did to
// the erased text and undoes it, in proportion to a, for the kept prompts:
//   D' = D * Ae * (Ae + a*Ap + r*I)^-1,  Ae = mean s_e s_e^T, Ap = mean s_p s_p^T.
// r = 1e-3 * trace(Ae) / dim only keeps the system well conditioned (directions neither set uses
// lose the edit).
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace lethe {

// The right factor [dim, dim] in float64 on the CPU, from states [n, tokens, dim].
torch::Tensor PreservationMap(const torch::Tensor& erased, const torch::Tensor& kept, double weight);

// Whether a delta key is a weight that reads the text states (…attn2.to_k / to_v.weight).
bool ReadsTextStates(const std::string& name);

// A run with the refit on must have prompts to keep (group `projection`) and train a weight that
// reads the text states; otherwise LETHE_BAD_ARGUMENT, ending with `remedy` (what to train instead).
void CheckPreservationApplies(int64_t keptPrompts, const std::vector<std::pair<std::string, torch::Tensor>>& trained, const std::string& remedy);

// Refits every such delta in place (no-grad).
void ApplyPreservation(std::vector<std::pair<std::string, torch::Tensor>>& delta, const torch::Tensor& erased, const torch::Tensor& kept, double weight);

}  // namespace lethe
