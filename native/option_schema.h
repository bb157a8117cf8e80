// The options of the native Learner and Model (lib/native.ts). Every field is required: the
// defaults live in TypeScript (lib/defaults.ts, filled in by lib/native.ts), so a missing field
// is an Error naming it. Only what would corrupt memory or the arithmetic is checked here.
#pragma once
#include <napi.h>

#include "learner.h"
#include "model.h"

namespace torchts {

// {arch, numClasses, device, mean, std, amp}; mean and std are null for no normalisation.
ModelOptions parseModelOptions(const Napi::Value& value, const std::string& what);
// The model's fields plus {optimizer, weightDecay, beta2, eps, labelSmoothing, seed, frozenBatchNorm}.
LearnerOptions parseLearnerOptions(const Napi::Value& value);
// {rank, worldSize, masterAddr, masterPort, hostStore, prefix, iface, backend, timeoutMs,
// joinTimeoutMs}: how a Learner joins a data-parallel group (process_group.h).
GroupOptions parseGroupOptions(const Napi::Value& value);
// {lrs, mom}: one lr, or one per group, each finite and >= 0; mom in [0, 1).
Hyper parseHyper(const Napi::Value& value, int groupCount);

}  // namespace torchts
