// libjpeg-turbo decode + squish for the presized data path (see jpeg.h). Why it exists: a sharp
// pipeline costs a fixed ~0.3-0.6 CPU ms before it decodes a pixel, more than a whole 160 px
// JPEG decode; here one call decodes a batch on the pool with no per-image set-up beyond
// libjpeg's own.
#include "jpeg.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "errors.h"
#include "js_values.h"
#include "input_limits.h"

#ifdef TORCHTS_HAVE_JPEG
#include <jpeglib.h>
#endif

namespace torchts {

#ifdef TORCHTS_HAVE_JPEG
namespace {

// One decodeJpegInto call: shared by its workers, resolved by the last one to finish.
// The workers touch only memory the job owns: copies of the inputs and a pixel buffer that is
// copied into `out` on the JS thread. JS may detach (transfer) the caller's buffers while the
// pool decodes, and their memory may then be freed.
struct BatchJob {
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<size_t> offsets;
  std::vector<uint8_t> pixels;  // image i at i * itemBytes
  size_t itemBytes = 0;
  int presize = 0;
  std::vector<std::string> errors;
  std::atomic<size_t> next{0};
  int pending = 0;  // workers not yet finished; touched on the JS thread only
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Uint8Array> out;
  size_t outLength = 0;

  explicit BatchJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}

  void resolve(Napi::Env env) {
    Napi::HandleScope scope(env);
    if (!inputs.empty()) {
      Napi::Uint8Array target = out.Value();
      if (target.ByteLength() != outLength) {
        out.Reset();
        deferred.Reject(jsError(env, "decodeJpegInto: out was detached or resized before the batch was "
                                     "decoded; keep it until the promise settles").Value());
        return;
      }
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (errors[i].empty()) std::memcpy(target.Data() + offsets[i], pixels.data() + i * itemBytes, itemBytes);
      }
    }
    Napi::Array result = Napi::Array::New(env, errors.size());
    for (size_t i = 0; i < errors.size(); ++i) {
      result.Set(uint32_t(i), errors[i].empty() ? env.Null() : Napi::String::New(env, errors[i]));
    }
    out.Reset();
    deferred.Resolve(result);
  }
};

// Pulls images from the job until none is left: several of these decode one batch in parallel.
class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, std::shared_ptr<BatchJob> job)
      : Napi::AsyncWorker(env, "torchts.decodeJpegInto"), job_(std::move(job)) {}

  void Execute() override {
    BatchJob& job = *job_;
    for (;;) {
      const size_t i = job.next.fetch_add(1);
      if (i >= job.inputs.size()) break;
      try {
        job.errors[i] = decodeJpegPresized(job.inputs[i].data(), job.inputs[i].size(), job.presize,
                                           job.pixels.data() + i * job.itemBytes, scratch_);
      } catch (const std::exception& e) {
        job.errors[i] = std::string("native decode failed: ") + e.what();
      }
    }
  }

  void OnOK() override { finish(); }
  void OnError(const Napi::Error&) override { finish(); }  // Execute never sets an error

 private:
  void finish() {
    if (--job_->pending == 0) job_->resolve(Env());
  }

  std::shared_ptr<BatchJob> job_;
  JpegScratch scratch_;
};

// An integer argument of decodeJpegInto in [min, max].
int64_t integerArg(const Napi::Value& value, const std::string& what, int64_t min, int64_t max) {
  return wholeNumber(value, "decodeJpegInto: " + what, min, max, "an integer");
}

// decodeJpegInto(inputs: Uint8Array[], presize, out: Uint8Array, offsets: number[], workers?)
// Arguments are read as everywhere in the addon (js_values.h); a bad one throws an Error naming it.
Napi::Value DecodeJpegInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Array inputs = arrayArg(info[0], "decodeJpegInto: inputs");
    const int presize = int(integerArg(info[1], "presize", 1, kMaxPresize));
    Napi::Uint8Array out = uint8Array(info[2], "decodeJpegInto: out", "a Uint8Array or Buffer");
    Napi::Array offsets = arrayArg(info[3], "decodeJpegInto: offsets");
    const int64_t workers =
        info.Length() > 4 && !info[4].IsUndefined() ? integerArg(info[4], "workers", 1, kMaxDecodeWorkers) : 1;
    const uint32_t n = inputs.Length();
    if (offsets.Length() != n) {
      badInput("decodeJpegInto: offsets has " + std::to_string(offsets.Length()) + " entries, expected one per input (" +
               std::to_string(n) + ")");
    }
    auto job = std::make_shared<BatchJob>(env);
    job->presize = presize;
    job->errors.resize(n);
    const size_t itemBytes = size_t(presize) * presize * 3;
    job->itemBytes = itemBytes;
    // Each input is copied as soon as it is checked, before any other JS (a getter) can run.
    // Offsets may overlap, so n * itemBytes is not bounded by out's size and can be more than
    // memory holds: say so rather than "out of memory" alone.
    try {
      for (uint32_t i = 0; i < n; ++i) {
        const std::string index = "[" + std::to_string(i) + "]";
        Napi::Uint8Array input = uint8Array(inputs.Get(i), "decodeJpegInto: inputs" + index, "a Uint8Array or Buffer");
        job->inputs.emplace_back(input.Data(), input.Data() + input.ByteLength());
        const int64_t offset = integerArg(offsets.Get(i), "offsets" + index, 0, int64_t(out.ByteLength()) - int64_t(itemBytes));
        job->offsets.push_back(size_t(offset));
      }
      // More than the machine's memory is refused before asking for it: the allocation would
      // fail anyway, and under a sanitizer (or overcommit) it aborts instead of throwing.
      const double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
      if (physical > 0 && double(n) * double(itemBytes) > physical) throw std::bad_alloc();
      job->pixels.resize(size_t(n) * itemBytes);
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("decodeJpegInto: out of memory for " + std::to_string(n) + " images of " +
                               std::to_string(presize) + "x" + std::to_string(presize));
    }
    job->out = Napi::Persistent(out);
    job->outLength = out.ByteLength();
    Napi::Promise promise = job->deferred.Promise();
    if (n == 0) {
      job->resolve(env);
      return promise;
    }
    const int count = int(std::min<int64_t>(workers, n));
    job->pending = count;
    for (int k = 0; k < count; ++k) (new DecodeWorker(env, job))->Queue();  // AsyncWorker deletes itself
    return promise;
  });
}

#define TORCHTS_STRINGIFY2(x) #x
#define TORCHTS_STRINGIFY(x) TORCHTS_STRINGIFY2(x)

Napi::Value JpegVersion(const Napi::CallbackInfo& info) {
#ifdef LIBJPEG_TURBO_VERSION
  return Napi::String::New(info.Env(), "libjpeg-turbo " TORCHTS_STRINGIFY(LIBJPEG_TURBO_VERSION));
#else
  return Napi::String::New(info.Env(), "libjpeg " TORCHTS_STRINGIFY(JPEG_LIB_VERSION));
#endif
}

}  // namespace

void InitJpeg(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeJpegInto", Napi::Function::New(env, DecodeJpegInto, "decodeJpegInto"));
  exports.Set("jpegVersion", Napi::Function::New(env, JpegVersion, "jpegVersion"));
}

#else  // no libjpeg at build time: the data pipeline decodes everything with sharp.

void InitJpeg(Napi::Env, Napi::Object) {}

#endif

}  // namespace torchts
