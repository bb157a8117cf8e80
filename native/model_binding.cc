// The JS Model class: a model for inference only (no optimizer, no loss), with the Learner's
// threading (async_wrap.h): its work runs on its own worker thread and settles Promises.
#include "bindings.h"

#include "async_wrap.h"
#include "batch_schema.h"
#include "errors.h"
#include "js_values.h"
#include "model.h"
#include "option_schema.h"
#include "runtime.h"

namespace torchts {
namespace {

class Model : public AsyncWrap<Model, ModelCore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {
                           InstanceMethod<&Model::Predict>("predict"),
                           InstanceMethod<&Model::Logits>("logits"),
                           InstanceMethod<&Model::Load>("load"),
                           InstanceMethod<&Model::Weights>("weights"),
                           InstanceMethod<&Model::SavePyTorch>("savePyTorch"),
                           InstanceMethod<&Model::Dispose>("dispose"),
                           InstanceAccessor<&Model::Device>("device"),
                           InstanceAccessor<&Model::NumClasses>("numClasses"),
                       });
  }

  explicit Model(const Napi::CallbackInfo& info) : AsyncWrap(info, "model") {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      auto options = parseModelOptions(info[0], "Model options");
      applyThreads();
      auto core = std::make_shared<ModelCore>(options);
      device_ = deviceName(core->device());
      numClasses_ = core->options().numClasses;
      start(env, std::move(core), "torchts.Model");
    });
  }

 private:
  Napi::Value Predict(const Napi::CallbackInfo& info) { return predictCall(info, numClasses_); }
  Napi::Value Logits(const Napi::CallbackInfo& info) { return logitsCall(info, numClasses_); }

  // Loads the weights of a Learner's checkpoint and resolves with its meta text; the optimizer
  // state in the file is read and dropped on the worker thread.
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return async(env, [&]() -> Napi::Value {
      auto file = stringArg(info[0], "load(file): file");
      return schedule<std::string>(
          env, [file](ModelCore& core) { return userMeta(core.load(file)); },
          [](Napi::Env env, std::string& meta) -> Napi::Value { return Napi::String::New(env, meta); });
    });
  }

  Napi::Value Weights(const Napi::CallbackInfo& info) { return weightsCall(info); }
  Napi::Value SavePyTorch(const Napi::CallbackInfo& info) { return savePyTorchCall(info); }
  Napi::Value Dispose(const Napi::CallbackInfo& info) { return disposeNow(info.Env()); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }
  Napi::Value NumClasses(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(numClasses_));
  }

  std::string device_;
  int64_t numClasses_ = 0;
};

}  // namespace

void InitModel(Napi::Env env, Napi::Object exports) { exports.Set("Model", Model::Define(env)); }

}  // namespace torchts
