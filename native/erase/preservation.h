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
//
// The means weigh the token states (`projectionWeighting`): `tokens` counts every state of every
// prompt the same; `text-padding` gives each prompt the same weight, half on its text (start token
// through end token) and half on its padding. With `tokens` a 77-token prompt of four words is
// ~90% padding, so its words barely count: on the bundled model a kept prompt's own word kept 18%
// of Concept Ablation's edit at weight 5 ("a yellow face" lost its yellow); docs/ca.md measures both.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace lethe {

enum class StateWeighting { kTokens, kTextPadding };
// 'tokens' | 'text-padding' (LETHE_BAD_ARGUMENT otherwise).
StateWeighting ParseStateWeighting(const std::string& name);

// One prompt set: its frozen token states [n, tokens, dim] and token ids [n, tokens].
struct PromptStates {
  const torch::Tensor& states;
  const torch::Tensor& ids;
};

// Per-state weights [n, tokens] (float64, each prompt's summing to 1). The text ends where the
// trailing run of the row's last id (its padding) begins, plus one: the end token when the padding
// is the end token (SD 1's tokenizer); one pad token more when it is not (SD 2's '!').
torch::Tensor StateWeights(const torch::Tensor& ids, StateWeighting weighting);

// The right factor [dim, dim] in float64 on the CPU.
torch::Tensor PreservationMap(const PromptStates& erased, const PromptStates& kept, double weight, StateWeighting weighting);

// Whether a delta key is a weight that reads the text states (…attn2.to_k / to_v.weight).
bool ReadsTextStates(const std::string& name);

// A run with the refit on must have prompts to keep (group `projection`) and train a weight that
// reads the text states; otherwise LETHE_BAD_ARGUMENT, ending with `remedy` (what to train instead).
void CheckPreservationApplies(int64_t keptPrompts, const std::vector<std::pair<std::string, torch::Tensor>>& trained, const std::string& remedy);

// Refits every such delta in place (no-grad).
void ApplyPreservation(std::vector<std::pair<std::string, torch::Tensor>>& delta, const PromptStates& erased, const PromptStates& kept, double weight,
                       StateWeighting weighting);

}  // namespace lethe
