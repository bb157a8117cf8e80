// The JS Learner class: checks arguments on the JS thread, runs the work on the learner's own
// worker thread (async_wrap.h), and settles Promises back on the JS thread.
#include "bindings.h"

#include "async_wrap.h"
#include "batch_schema.h"
#include "errors.h"
#include "js_values.h"
#include "learner.h"
#include "option_schema.h"
#include "runtime.h"

namespace torchts {
namespace {

// A truthy `key` of an optional options object (info[index]); false when it is left out.
bool flagOption(const Napi::CallbackInfo& info, size_t index, const char* key, const std::string& what) {
  if (info.Length() <= index || info[index].IsUndefined()) return false;
  auto options = objectArg(info[index], what);
  return hasField(options, key) && options.Get(key).ToBoolean().Value();
}

Napi::Array stringArray(Napi::Env env, const std::vector<std::string>& names) {
  auto array = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) array.Set(i, names[i]);
  return array;
}

class Learner : public AsyncWrap<Learner, LearnerCore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Learner",
                       {
                           InstanceMethod<&Learner::TrainStep>("trainStep"),
                           InstanceMethod<&Learner::EvalStep>("evalStep"),
                           InstanceMethod<&Learner::Predict>("predict"),
                           InstanceMethod<&Learner::Logits>("logits"),
                           InstanceMethod<&Learner::Freeze>("freeze"),
                           InstanceMethod<&Learner::ResetOptimizer>("resetOptimizer"),
                           InstanceMethod<&Learner::Save>("save"),
                           InstanceMethod<&Learner::Load>("load"),
                           InstanceMethod<&Learner::LoadTorchvision>("loadTorchvision"),
                           InstanceMethod<&Learner::Parameters>("parameters"),
                           InstanceMethod<&Learner::Weights>("weights"),
                           InstanceMethod<&Learner::SavePyTorch>("savePyTorch"),
                           InstanceMethod<&Learner::NonFiniteWeights>("nonFiniteWeights"),
                           InstanceMethod<&Learner::JoinGroup>("joinGroup"),
                           InstanceMethod<&Learner::AllReduce>("allReduce"),
                           InstanceMethod<&Learner::ReportFailure>("reportFailure"),
                           InstanceMethod<&Learner::RequestStop>("requestStop"),
                           InstanceMethod<&Learner::GroupStats>("groupStats"),
                           InstanceMethod<&Learner::Dispose>("dispose"),
                           InstanceAccessor<&Learner::Device>("device"),
                           InstanceAccessor<&Learner::GroupCount>("groupCount"),
                           InstanceAccessor<&Learner::NumClasses>("numClasses"),
                       });
  }

  explicit Learner(const Napi::CallbackInfo& info) : AsyncWrap(info, "learner") {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      auto options = parseLearnerOptions(info[0]);
      applyThreads();
      auto core = std::make_shared<LearnerCore>(options);
      device_ = deviceName(core->device());
      groupCount_ = core->groupCount();
      numClasses_ = core->numClasses();
      start(env, std::move(core), "torchts.Learner");
    });
  }

 private:
  // A batch with labels or soft targets, copied for the worker; `what` names it in the error.
  std::shared_ptr<BatchSpec> labelledBatch(const Napi::Value& value, const std::string& what) {
    auto batch = ownedBatch(value, numClasses_);
    if (!batch->labels.defined() && !batch->targets.defined()) {
      badInput(what + " needs labels (Int32Array) or targets (Float32Array)");
    }
    return batch;
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto batch = labelledBatch(info[0], "a training batch");
      auto hyper = parseHyper(info[1], groupCount_);
      return schedule<StepResult>(
          env, [batch, hyper](LearnerCore& core) { return core.trainStep(*batch, hyper); },
          [](Napi::Env env, StepResult& result) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("loss", result.loss);
            out.Set("stop", result.stop);
            return out;
          });
    });
  }

  Napi::Value EvalStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto batch = labelledBatch(info[0], "evalStep");
      if (batch->mix) badInput("batch.mix is for training only; evalStep takes unmixed batches");
      const bool probs = flagOption(info, 1, "probs", "evalStep options");
      return schedule<EvalResult>(
          env, [batch, probs](LearnerCore& core) { return core.evalStep(*batch, probs); },
          [](Napi::Env env, EvalResult& r) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("loss", r.loss);
            out.Set("correct", static_cast<double>(r.correct));
            if (r.probs.defined()) out.Set("probs", toFloat32Array(env, r.probs));
            return out;
          });
    });
  }

  Napi::Value Predict(const Napi::CallbackInfo& info) { return predictCall(info, numClasses_); }
  Napi::Value Logits(const Napi::CallbackInfo& info) { return logitsCall(info, numClasses_); }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto file = stringArg(info[0], "save(file, meta): file");
      auto meta = stringArg(info[1], "save(file, meta): meta (JSON text)");
      return schedule<bool>(
          env, [file, meta](LearnerCore& core) { core.save(file, meta); return true; },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto file = stringArg(info[0], "load(file): file");
      return schedule<std::string>(
          env, [file](LearnerCore& core) { return core.load(file); },
          [](Napi::Env env, std::string& meta) -> Napi::Value { return Napi::String::New(env, meta); });
    });
  }

  Napi::Value LoadTorchvision(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto file = stringArg(info[0], "loadTorchvision(file): file");
      const bool skipHead = flagOption(info, 1, "skipHead", "loadTorchvision options");
      return schedule<LoadReport>(
          env, [file, skipHead](LearnerCore& core) { return core.loadTorchvision(file, skipHead); },
          [](Napi::Env env, LoadReport& report) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("loaded", stringArray(env, report.loaded));
            out.Set("skipped", stringArray(env, report.skipped));
            return out;
          });
    });
  }

  Napi::Value Freeze(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    return guarded(env, [&]() -> Napi::Value {
      const int upTo = static_cast<int>(wholeNumber(info[0], "freeze(upTo): upTo", 0, groupCount_));
      frozenUpTo_ = upTo;
      // In queue order, so steps already queued run with the old setting.
      post([upTo](LearnerCore& core) { core.freeze(upTo); });
      return env.Undefined();
    });
  }

  Napi::Value ResetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    return guarded(env, [&]() -> Napi::Value {
      post([](LearnerCore& core) { core.resetOptimizer(); });
      return env.Undefined();
    });
  }

  Napi::Value Parameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    return guarded(env, [&]() -> Napi::Value {
      auto params = core().parameters(frozenUpTo_);
      auto out = Napi::Array::New(env, params.size());
      for (size_t i = 0; i < params.size(); ++i) {
        auto item = Napi::Object::New(env);
        item.Set("name", params[i].name);
        auto shape = Napi::Array::New(env, params[i].shape.size());
        for (size_t d = 0; d < params[i].shape.size(); ++d) shape.Set(d, static_cast<double>(params[i].shape[d]));
        item.Set("shape", shape);
        item.Set("group", params[i].group);
        item.Set("trainable", params[i].trainable);
        out.Set(i, item);
      }
      return out;
    });
  }

  Napi::Value Weights(const Napi::CallbackInfo& info) { return weightsCall(info); }
  Napi::Value SavePyTorch(const Napi::CallbackInfo& info) { return savePyTorchCall(info); }

  // Names of the weights holding NaN or infinite values (an empty array when all are finite).
  Napi::Value NonFiniteWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      return schedule<std::vector<std::string>>(
          env, [](LearnerCore& core) { return core.nonFiniteWeights(); },
          [](Napi::Env env, std::vector<std::string>& names) -> Napi::Value { return stringArray(env, names); });
    });
  }

  // Joins a data-parallel group on the worker thread (the rendezvous blocks until every rank is
  // there); resolves with {rank, worldSize, backend}.
  Napi::Value JoinGroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto options = parseGroupOptions(info[0]);
      const bool overlap = boolField(info[0].As<Napi::Object>(), "overlap", "joinGroup options.overlap");
      return schedule<GroupOptions>(
          env,
          [options, overlap](LearnerCore& core) {
            core.joinGroup(options, overlap);
            auto joined = options;
            joined.backend = core.parallel()->group().backend();
            return joined;
          },
          [](Napi::Env env, GroupOptions& joined) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("rank", joined.rank);
            out.Set("worldSize", joined.worldSize);
            out.Set("backend", joined.backend);
            return out;
          });
    });
  }

  // Sums numbers over every rank, in queue order with the steps; resolves with a Float64Array.
  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto values = numberList(info[0], "allReduce(values): values");
      return schedule<std::vector<double>>(
          env, [values](LearnerCore& core) { return core.allReduce(values); },
          [](Napi::Env env, std::vector<double>& sums) -> Napi::Value {
            auto out = Napi::Float64Array::New(env, sums.size());
            std::copy(sums.begin(), sums.end(), out.Data());
            return out;
          });
    });
  }

  // Tells the other ranks why this one is about to stop, so they name it instead of timing out.
  Napi::Value ReportFailure(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto message = stringArg(info[0], "reportFailure(message): message");
      return schedule<bool>(
          env, [message](LearnerCore& core) { core.reportFailure(message); return true; },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  // Synchronous, safe while a step runs: every rank stops after the next step (trainStep's stop).
  Napi::Value RequestStop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    core().requestStop();
    return env.Undefined();
  }

  // Seconds spent waiting for collectives: {gradientWait, total}.
  Napi::Value GroupStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      return schedule<std::pair<double, double>>(
          env,
          [](LearnerCore& core) {
            const auto* p = core.parallel();
            return p ? std::make_pair(p->gradientWaitSeconds(), p->group().waitSeconds()) : std::make_pair(0.0, 0.0);
          },
          [](Napi::Env env, std::pair<double, double>& s) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("gradientWaitSeconds", s.first);
            out.Set("waitSeconds", s.second);
            return out;
          });
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) { return disposeNow(info.Env()); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }
  Napi::Value GroupCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), groupCount_); }
  Napi::Value NumClasses(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(numClasses_));
  }

  int frozenUpTo_ = 0;
  std::string device_;
  int groupCount_ = 0;
  int64_t numClasses_ = 0;
};

}  // namespace

void InitLearner(Napi::Env env, Napi::Object exports) { exports.Set("Learner", Learner::Define(env)); }

}  // namespace torchts
