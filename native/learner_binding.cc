// The JS Learner class: validates arguments on the JS thread, runs the work on the
// learner's own Worker thread, and settles Promises back on the JS thread.
#include <atomic>
#include <cmath>
#include <functional>
#include <memory>

#include "bridge.h"
#include "learner.h"
#include "worker.h"

namespace torchts {
namespace {

class Learner;

// One pending call: what it settles and what it keeps alive until then.
struct Completion {
  Napi::Promise::Deferred deferred;
  Napi::ObjectReference error;  // made at the call site, so a failure shows the caller's stack
  std::function<Napi::Value(Napi::Env)> result;
  std::string failure;
  bool ok = false;
  Learner* owner = nullptr;
};

// A batch whose image bytes the call owns. A reference to the caller's Uint8Array would not
// be enough: JS may overwrite it, or detach it (structuredClone/postMessage transfer) and let
// its memory be freed, while the call is still queued. The copy costs ~1 ms per 10 MB.
std::shared_ptr<BatchSpec> ownedBatch(const Napi::Value& value, int64_t numClasses) {
  Napi::Uint8Array images;
  auto batch = std::make_shared<BatchSpec>(parseBatch(value, numClasses, &images));
  batch->images = batch->images.clone();
  return batch;
}

LearnerOptions parseOptions(const Napi::Value& value) {
  auto object = objectArg(value, "Learner options");
  LearnerOptions o;
  o.arch = stringField(object, "arch", "options.arch");
  o.numClasses = intField(object, "numClasses", "options.numClasses", 1, 1 << 20);
  o.device = parseDevice(hasField(object, "device") ? stringField(object, "device", "options.device") : "auto");
  if (hasField(object, "optimizer")) {
    const auto name = stringField(object, "optimizer", "options.optimizer");
    if (name != "adamw" && name != "sgd") throw InputError("options.optimizer is '" + name + "'; expected 'adamw' or 'sgd'");
    o.optimizer = name == "adamw" ? OptimizerKind::AdamW : OptimizerKind::SGD;
  }
  auto number = [&](const char* key, double fallback, double min, double maxExclusive) {
    if (!hasField(object, key)) return fallback;
    const double v = numberField(object, key, std::string("options.") + key);
    if (!(v >= min && v < maxExclusive)) {
      throw InputError(std::string("options.") + key + " = " + std::to_string(v) + "; expected a value in [" +
                       std::to_string(min) + ", " + std::to_string(maxExclusive) + ")");
    }
    return v;
  };
  o.weightDecay = number("weightDecay", 0.01, 0.0, 1e6);
  o.beta2 = number("beta2", 0.99, 0.0, 1.0);
  o.eps = number("eps", 1e-5, 0.0, 1.0);
  o.labelSmoothing = number("labelSmoothing", 0.0, 0.0, 1.0);
  o.norm = normalisationFrom(object);
  if (hasField(object, "amp")) {
    const auto amp = stringField(object, "amp", "options.amp");
    if (amp == "none") o.amp = Amp::None;
    else if (amp == "bf16") o.amp = Amp::BF16;
    else if (amp == "fp16") o.amp = Amp::FP16;
    else throw InputError("options.amp is '" + amp + "'; expected 'none', 'bf16' or 'fp16'");
  }
  if (hasField(object, "seed")) o.seed = intField(object, "seed", "options.seed", 0, 9007199254740991LL);
  return o;
}

class Learner : public Napi::ObjectWrap<Learner> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Learner",
                       {
                           InstanceMethod<&Learner::TrainStep>("trainStep"),
                           InstanceMethod<&Learner::EvalStep>("evalStep"),
                           InstanceMethod<&Learner::Predict>("predict"),
                           InstanceMethod<&Learner::Freeze>("freeze"),
                           InstanceMethod<&Learner::ResetOptimizer>("resetOptimizer"),
                           InstanceMethod<&Learner::Save>("save"),
                           InstanceMethod<&Learner::Load>("load"),
                           InstanceMethod<&Learner::LoadTorchvision>("loadTorchvision"),
                           InstanceMethod<&Learner::Parameters>("parameters"),
                           InstanceMethod<&Learner::Dispose>("dispose"),
                           InstanceAccessor<&Learner::Device>("device"),
                           InstanceAccessor<&Learner::GroupCount>("groupCount"),
                           InstanceAccessor<&Learner::NumClasses>("numClasses"),
                       });
  }

  explicit Learner(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Learner>(info) {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      auto options = parseOptions(info[0]);
      applyThreads();
      core_ = std::make_shared<LearnerCore>(options);
      device_ = deviceName(core_->device());
      groupCount_ = core_->groupCount();
      numClasses_ = core_->numClasses();
    });
    auto noop = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
    tsfnAlive_ = std::make_shared<std::atomic<bool>>(true);
    tsfn_ = Napi::ThreadSafeFunction::New(env, noop, "torchts.Learner", 0, 1,
                                          [alive = tsfnAlive_](Napi::Env) { *alive = false; });
    tsfn_.Unref(env);  // an idle learner does not keep the process alive
    worker_ = std::make_unique<Worker>(static_cast<napi_env>(env));
    // Registered after the thread-safe function, so it runs before node closes that function.
    cleanup_ = env.AddCleanupHook(std::function<void()>([this] {
      cleanupRan_ = true;
      shutdown();
      worker_.reset();  // joins: the last job releases the thread-safe function before node closes it
    }));
  }

  ~Learner() override {
    shutdown();
    worker_.reset();
    if (!cleanupRan_ && !cleanup_.IsEmpty()) cleanup_.Remove(Env());
  }

  // Called on the JS thread when a Completion is settled.
  void finished(Napi::Env env) {
    if (--pending_ == 0 && !disposed_) tsfn_.Unref(env);
    Unref();
  }

 private:
  template <typename Result>
  using Work = std::function<Result(LearnerCore&)>;
  template <typename Result>
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  // Queues `work` on the worker thread; the Promise settles with toJs(result) or the error.
  template <typename Result>
  Napi::Value schedule(Napi::Env env, Work<Result> work, ToJs<Result> toJs) {
    auto* completion = new Completion{Napi::Promise::Deferred::New(env), Napi::Persistent(Napi::Error::New(env).Value()),
                                      {}, {}, false, this};
    auto promise = completion->deferred.Promise();
    Ref();
    if (pending_++ == 0) tsfn_.Ref(env);
    Worker* worker = worker_.get();  // outlives its jobs: the thread is joined before it is freed
    worker->post([core = core_, worker, completion, work = std::move(work), toJs = std::move(toJs), tsfn = tsfn_](bool cancelled) mutable {
      if (cancelled) {
        completion->failure = "the learner was disposed before this call ran";
      } else {
        try {
          applyThreads();
          auto shared = std::make_shared<Result>(work(*core));
          completion->result = [shared, toJs](Napi::Env env) { return toJs(env, *shared); };
          completion->ok = true;
        } catch (...) {
          completion->failure = currentExceptionMessage();
        }
      }
      // At process exit nothing can be settled: the JS handles are left to the exit. If node
      // is tearing the environment down, the call is refused and the same holds.
      if (worker->exiting()) return;
      tsfn.BlockingCall(completion, &Learner::settle);
    });
    return promise;
  }

  static void settle(Napi::Env env, Napi::Function, Completion* completion) {
    Napi::HandleScope scope(env);
    if (completion->ok) {
      try {
        completion->deferred.Resolve(completion->result(env));
      } catch (const Napi::Error& e) {
        completion->deferred.Reject(e.Value());
      } catch (...) {
        // Nothing may escape a thread-safe function's callback: it would terminate the process.
        completion->deferred.Reject(Napi::Error::New(env, "torchts: " + currentExceptionMessage()).Value());
      }
    } else {
      auto error = completion->error.Value();
      const std::string message = "torchts: " + completion->failure;
      // The stack was captured with an empty message: put the real one in its first line.
      auto stack = error.Get("stack");
      if (stack.IsString()) {
        const std::string text = stack.As<Napi::String>().Utf8Value();
        const auto newline = text.find('\n');
        error.Set("stack", "Error: " + message + (newline == std::string::npos ? "" : text.substr(newline)));
      }
      error.Set("message", message);
      completion->deferred.Reject(error);
    }
    Learner* owner = completion->owner;
    delete completion;
    owner->finished(env);
  }

  // A Promise rejected now (argument errors), with the same shape as a native failure.
  Napi::Value rejected(Napi::Env env, const std::string& message) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(Napi::Error::New(env, "torchts: " + message).Value());
    return deferred.Promise();
  }

  // Runs `parse` (argument checks) then `go`; any exception becomes a rejected Promise.
  template <typename Body>
  Napi::Value async(Napi::Env env, Body&& body) {
    if (disposed_) return rejected(env, "this learner was disposed; create a new one");
    try {
      return body();
    } catch (const Napi::Error& e) {
      auto deferred = Napi::Promise::Deferred::New(env);
      deferred.Reject(e.Value());
      return deferred.Promise();
    } catch (...) {
      return rejected(env, currentExceptionMessage());
    }
  }

  Hyper parseHyper(const Napi::Value& value) {
    auto object = objectArg(value, "hyper");
    Hyper hyper;
    hyper.lrs = numberList(object.Get("lrs"), "hyper.lrs");
    if (hyper.lrs.size() != 1 && hyper.lrs.size() != static_cast<size_t>(groupCount_)) {
      throw InputError("hyper.lrs has " + std::to_string(hyper.lrs.size()) + " entries; expected 1 or one per group (" +
                       std::to_string(groupCount_) + ")");
    }
    for (size_t i = 0; i < hyper.lrs.size(); ++i) {
      if (!(std::isfinite(hyper.lrs[i]) && hyper.lrs[i] >= 0)) {
        throw InputError("hyper.lrs[" + std::to_string(i) + "] = " + std::to_string(hyper.lrs[i]) +
                         "; expected a finite learning rate >= 0");
      }
    }
    hyper.mom = numberField(object, "mom", "hyper.mom");
    if (!(hyper.mom >= 0 && hyper.mom < 1)) {
      throw InputError("hyper.mom = " + std::to_string(hyper.mom) + "; expected a momentum in [0, 1)");
    }
    return hyper;
  }

  // A batch with labels or soft targets, copied for the worker; `what` names it in the error.
  std::shared_ptr<BatchSpec> labelledBatch(const Napi::Value& value, const std::string& what) {
    auto batch = ownedBatch(value, numClasses_);
    if (!batch->labels.defined() && !batch->targets.defined()) {
      throw InputError(what + " needs labels (Int32Array) or targets (Float32Array)");
    }
    return batch;
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto batch = labelledBatch(info[0], "a training batch");
      auto hyper = parseHyper(info[1]);
      return schedule<double>(
          env, [batch, hyper](LearnerCore& core) { return core.trainStep(*batch, hyper); },
          [](Napi::Env env, double& loss) -> Napi::Value {
            auto out = Napi::Object::New(env);
            out.Set("loss", loss);
            return out;
          });
    });
  }

  Napi::Value EvalStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto batch = labelledBatch(info[0], "evalStep");
      if (batch->mix) throw InputError("batch.mix is for training only; evalStep takes unmixed batches");
      bool probs = false;
      if (info.Length() > 1 && !info[1].IsUndefined()) {
        auto options = objectArg(info[1], "evalStep options");
        probs = hasField(options, "probs") && options.Get("probs").ToBoolean().Value();
      }
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

  Napi::Value Predict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto batch = ownedBatch(info[0], numClasses_);
      if (batch->mix) throw InputError("batch.mix is for training only; predict takes unmixed batches");
      return schedule<torch::Tensor>(
          env, [batch](LearnerCore& core) { return core.predict(*batch); },
          [](Napi::Env env, torch::Tensor& probs) -> Napi::Value { return toFloat32Array(env, probs); });
    });
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) throw InputError("save(file, meta): file must be a string");
      if (!info[1].IsString()) throw InputError("save(file, meta): meta must be a string (JSON text)");
      auto file = info[0].As<Napi::String>().Utf8Value();
      auto meta = info[1].As<Napi::String>().Utf8Value();
      return schedule<bool>(
          env, [file, meta](LearnerCore& core) { core.save(file, meta); return true; },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) throw InputError("load(file): file must be a string");
      auto file = info[0].As<Napi::String>().Utf8Value();
      return schedule<std::string>(
          env, [file](LearnerCore& core) { return core.load(file); },
          [](Napi::Env env, std::string& meta) -> Napi::Value { return Napi::String::New(env, meta); });
    });
  }

  Napi::Value LoadTorchvision(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) throw InputError("loadTorchvision(file): file must be a string");
      auto file = info[0].As<Napi::String>().Utf8Value();
      bool skipHead = false;
      if (info.Length() > 1 && !info[1].IsUndefined()) {
        auto options = objectArg(info[1], "loadTorchvision options");
        skipHead = hasField(options, "skipHead") && options.Get("skipHead").ToBoolean().Value();
      }
      return schedule<LoadReport>(
          env, [file, skipHead](LearnerCore& core) { return core.loadTorchvision(file, skipHead); },
          [](Napi::Env env, LoadReport& report) -> Napi::Value {
            auto out = Napi::Object::New(env);
            auto list = [&](const std::vector<std::string>& names) {
              auto array = Napi::Array::New(env, names.size());
              for (size_t i = 0; i < names.size(); ++i) array.Set(i, names[i]);
              return array;
            };
            out.Set("loaded", list(report.loaded));
            out.Set("skipped", list(report.skipped));
            return out;
          });
    });
  }

  void requireLive(Napi::Env env) {
    if (disposed_) throw Napi::Error::New(env, "torchts: this learner was disposed; create a new one");
  }

  Napi::Value Freeze(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    const int upTo = static_cast<int>(guarded(env, [&] {
      auto holder = Napi::Object::New(env);
      holder.Set("upTo", info[0]);
      return intField(holder, "upTo", "freeze(upTo): upTo", 0, groupCount_);
    }));
    frozenUpTo_ = upTo;
    // In queue order, so steps already queued run with the old setting.
    worker_->post([core = core_, upTo](bool cancelled) {
      if (!cancelled) core->freeze(upTo);
    });
    return env.Undefined();
  }

  Napi::Value ResetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    worker_->post([core = core_](bool cancelled) {
      if (!cancelled) core->resetOptimizer();
    });
    return env.Undefined();
  }

  Napi::Value Parameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireLive(env);
    return guarded(env, [&]() -> Napi::Value {
      auto params = core_->parameters(frozenUpTo_);
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

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    shutdown();
    return info.Env().Undefined();
  }

  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }
  Napi::Value GroupCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), groupCount_); }
  Napi::Value NumClasses(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(numClasses_));
  }

  // Refuses new calls and returns at once: the worker thread finishes the running step, rejects
  // the queued calls, then releases the thread-safe function; the model is freed with the last
  // job that holds it. Joining here would block the event loop for the rest of the step; the
  // destructor, the cleanup hook and the process 'exit' handler join instead.
  void shutdown() {
    if (disposed_) return;
    disposed_ = true;
    if (worker_) {
      // Queued last, so it runs after every call has been handed to the thread-safe function.
      worker_->post([tsfn = tsfn_, alive = tsfnAlive_, worker = worker_.get()](bool) mutable {
        if (*alive && !worker->exiting()) tsfn.Release();
      });
      worker_->requestStop();
    } else if (tsfnAlive_ && *tsfnAlive_) {
      tsfn_.Release();
    }
    core_.reset();
  }

  std::shared_ptr<LearnerCore> core_;
  std::unique_ptr<Worker> worker_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<std::atomic<bool>> tsfnAlive_;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_;
  int pending_ = 0;
  int frozenUpTo_ = 0;
  bool disposed_ = false;
  bool cleanupRan_ = false;
  std::string device_;
  int groupCount_ = 0;
  int64_t numClasses_ = 0;
};

}  // namespace

void InitLearner(Napi::Env env, Napi::Object exports) { exports.Set("Learner", Learner::Define(env)); }

}  // namespace torchts
