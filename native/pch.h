// Precompiled header: the heavy, stable includes shared by every translation unit.
#pragma once
#include <torch/torch.h>
#include <napi.h>
