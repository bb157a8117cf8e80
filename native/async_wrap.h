// A JS class whose native work runs on its own Worker thread (worker.h), in call order, and
// settles Promises back on the JS thread through one thread-safe function per object. The
// Learner and the Model derive from it: AsyncWrap<Learner, LearnerCore>.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "batch_schema.h"
#include "checkpoint.h"
#include "errors.h"
#include "js_values.h"
#include "runtime.h"
#include "worker.h"

namespace torchts {

template <typename Derived, typename Core>
class AsyncWrap : public Napi::ObjectWrap<Derived> {
 protected:
  // `noun` names the object in messages: "this <noun> was disposed".
  AsyncWrap(const Napi::CallbackInfo& info, const char* noun) : Napi::ObjectWrap<Derived>(info), noun_(noun) {}

  ~AsyncWrap() override {
    shutdown();
    worker_.reset();
    if (!cleanupRan_ && !cleanup_.IsEmpty()) cleanup_.Remove(this->Env());
  }

  // Called by the derived constructor once `core` exists (a constructor that throws before
  // this leaves nothing to stop): starts the thread and the thread-safe function.
  void start(Napi::Env env, std::shared_ptr<Core> core, const char* resourceName) {
    core_ = std::move(core);
    auto noop = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
    tsfnAlive_ = std::make_shared<std::atomic<bool>>(true);
    tsfn_ = Napi::ThreadSafeFunction::New(env, noop, resourceName, 0, 1,
                                          [alive = tsfnAlive_](Napi::Env) { *alive = false; });
    tsfn_.Unref(env);  // an idle object does not keep the process alive
    worker_ = std::make_unique<Worker>(static_cast<napi_env>(env));
    // Registered after the thread-safe function, so it runs before node closes that function.
    cleanup_ = env.AddCleanupHook(std::function<void()>([this] {
      cleanupRan_ = true;
      shutdown();
      worker_.reset();  // joins: the last job releases the thread-safe function before node closes it
    }));
  }

  template <typename Result>
  using Work = std::function<Result(Core&)>;
  template <typename Result>
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  // Runs `body` (argument checks, then schedule()); a disposed object or any exception gives a
  // rejected Promise, so these entry points never throw.
  template <typename Body>
  Napi::Value async(Napi::Env env, Body&& body) {
    if (disposed_) return rejectedPromise(env, jsError(env, disposedMessage()));
    return guardedAsync(env, std::forward<Body>(body));
  }

  // Queues `work` on the worker thread; the Promise settles with toJs(result) or the error.
  template <typename Result>
  Napi::Value schedule(Napi::Env env, Work<Result> work, ToJs<Result> toJs) {
    auto* completion = new Completion{Napi::Promise::Deferred::New(env), Napi::Persistent(Napi::Error::New(env).Value()),
                                      {}, {}, false, this};
    auto promise = completion->deferred.Promise();
    this->Ref();
    if (pending_++ == 0) tsfn_.Ref(env);
    Worker* worker = worker_.get();  // outlives its jobs: the thread is joined before it is freed
    const std::string cancelled = "the " + std::string(noun_) + " was disposed before this call ran";
    worker->post([core = core_, worker, completion, work = std::move(work), toJs = std::move(toJs), tsfn = tsfn_,
                  cancelled](bool wasCancelled) mutable {
      if (wasCancelled) {
        completion->failure = cancelled;
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
      tsfn.BlockingCall(completion, &AsyncWrap::settle);
    });
    return promise;
  }

  // Queues `work` with no result, in call order (settings that later steps must see).
  void post(std::function<void(Core&)> work) {
    worker_->post([core = core_, work = std::move(work)](bool cancelled) {
      if (!cancelled) work(*core);
    });
  }

  // predict(batch) of every class with a Core::predict: an unmixed batch (labels optional) ->
  // softmax probabilities, n*numClasses, resolved as a Float32Array. logits(batch): the same
  // before the softmax.
  Napi::Value predictCall(const Napi::CallbackInfo& info, int64_t numClasses) {
    return inferenceCall(info, numClasses, "predict", [](Core& core, const BatchSpec& batch) { return core.predict(batch); });
  }
  Napi::Value logitsCall(const Napi::CallbackInfo& info, int64_t numClasses) {
    return inferenceCall(info, numClasses, "logits", [](Core& core, const BatchSpec& batch) { return core.logits(batch); });
  }

  // weights() of every class with a Core::stateDict: the floating-point parameters and buffers
  // as [{name, shape, data: Float32Array}], in state_dict order (what an exporter reads).
  Napi::Value weightsCall(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      return schedule<NamedTensors>(
          env, [](Core& core) { return core.stateDict(); },
          [](Napi::Env env, NamedTensors& tensors) -> Napi::Value {
            auto out = Napi::Array::New(env);
            for (const auto& [name, t] : tensors) {
              if (!t.is_floating_point()) continue;
              auto item = Napi::Object::New(env);
              item.Set("name", name);
              auto shape = Napi::Array::New(env, t.dim());
              for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), static_cast<double>(t.size(d)));
              item.Set("shape", shape);
              item.Set("data", toFloat32Array(env, t.reshape(-1)));
              out.Set(out.Length(), item);
            }
            return out;
          });
    });
  }

  // savePyTorch(file, names) of every class with a Core::stateDict: every parameter and buffer,
  // renamed by `names` ([ours, theirs] pairs that cover each exactly once), written as
  // torch.save(state_dict) writes it.
  Napi::Value savePyTorchCall(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto file = stringArg(info[0], "savePyTorch(file, names): file");
      auto list = arrayArg(info[1], "savePyTorch(file, names): names");
      std::vector<std::pair<std::string, std::string>> names;
      for (uint32_t i = 0; i < list.Length(); ++i) {
        const std::string what = "savePyTorch names[" + std::to_string(i) + "]";
        auto pair = arrayArg(list.Get(i), what);
        requireLength(pair.Length(), 2, what, "an [ours, theirs] pair of names");
        names.emplace_back(stringArg(pair.Get(0u), what + "[0]"), stringArg(pair.Get(1u), what + "[1]"));
      }
      return schedule<bool>(
          env, [file, names](Core& core) { writeTorchSave(file, renamedState(core.stateDict(), names)); return true; },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  template <typename Run>
  Napi::Value inferenceCall(const Napi::CallbackInfo& info, int64_t numClasses, const std::string& name, Run run) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto batch = ownedBatch(info[0], numClasses);
      if (batch->mix) badInput("batch.mix is for training only; " + name + " takes unmixed batches");
      return schedule<at::Tensor>(
          env, [batch, run](Core& core) { return run(core, *batch); },
          [](Napi::Env env, at::Tensor& out) -> Napi::Value { return toFloat32Array(env, out); });
    });
  }

  // For synchronous methods: a JS Error once the object is disposed.
  void requireLive(Napi::Env env) {
    if (disposed_) throw jsError(env, disposedMessage());
  }

  // The core for synchronous reads of what never changes after construction (names, shapes).
  const Core& core() const { return *core_; }

  // dispose(): see shutdown().
  Napi::Value disposeNow(Napi::Env env) {
    guarded(env, [this] { shutdown(); });
    return env.Undefined();
  }

 private:
  // One pending call: what it settles and what it keeps alive until then.
  struct Completion {
    Napi::Promise::Deferred deferred;
    Napi::ObjectReference error;  // made at the call site, so a failure shows the caller's stack
    std::function<Napi::Value(Napi::Env)> result;
    std::string failure;
    bool ok = false;
    AsyncWrap* owner = nullptr;
  };

  std::string disposedMessage() const { return "this " + std::string(noun_) + " was disposed; create a new one"; }

  static void settle(Napi::Env env, Napi::Function, Completion* completion) {
    Napi::HandleScope scope(env);
    if (completion->ok) {
      try {
        completion->deferred.Resolve(completion->result(env));
      } catch (const Napi::Error& e) {
        completion->deferred.Reject(e.Value());
      } catch (...) {
        // Nothing may escape a thread-safe function's callback: it would terminate the process.
        completion->deferred.Reject(jsError(env, currentExceptionMessage()).Value());
      }
    } else {
      Napi::Object error = completion->error.Value();
      const std::string message = "torchts: " + completion->failure;
      // The stack was captured with an empty message: put the real one in its first line.
      Napi::Value stack = error.Get("stack");
      if (stack.IsString()) {
        const std::string text = stack.As<Napi::String>().Utf8Value();
        const auto newline = text.find('\n');
        error.Set("stack", "Error: " + message + (newline == std::string::npos ? "" : text.substr(newline)));
      }
      error.Set("message", message);
      completion->deferred.Reject(error);
    }
    AsyncWrap* owner = completion->owner;
    delete completion;
    owner->finished(env);
  }

  // Called on the JS thread when a Completion is settled.
  void finished(Napi::Env env) {
    if (--pending_ == 0 && !disposed_) tsfn_.Unref(env);
    this->Unref();
  }

  // Refuses new calls and returns at once: the worker thread finishes the running job, rejects
  // the queued calls, then releases the thread-safe function; the core is freed with the last
  // job that holds it. Joining here would block the event loop for the rest of the job; the
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

  const char* noun_;
  std::shared_ptr<Core> core_;
  std::unique_ptr<Worker> worker_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<std::atomic<bool>> tsfnAlive_;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_;
  int pending_ = 0;
  bool disposed_ = false;
  bool cleanupRan_ = false;
};

}  // namespace torchts
