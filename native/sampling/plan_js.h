// A sampling plan from its JS form (src/schedulers/plan.ts), validated.
#pragma once
#include <napi.h>

#include "sampling/sampler.h"

namespace lethe {
SamplingPlan PlanFromJs(Napi::Value value);
}
