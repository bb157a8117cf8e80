// Reading JavaScript values into C++, one convention for every entry point: each reader takes
// `what`, the name the caller wrote ("options.weightDecay", "batch.mix.perm", "setThreads(n): n"),
// and throws InputError saying what was expected and what it got ("... must be a whole number in
// [1, 1024]; got the number 0"). A field left out reads as undefined and fails the same way, so
// every field a reader is asked for is required; optional fields are read only if hasField().
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace torchts {

// "undefined", "the number 1.5", "the string 'x'", "a Float32Array", "an object", ...
std::string describe(const Napi::Value& value);

// A plain object (not an array, typed array or function).
Napi::Object objectArg(const Napi::Value& value, const std::string& what);
Napi::Array arrayArg(const Napi::Value& value, const std::string& what);
// Present: neither undefined nor null.
bool hasField(const Napi::Object& object, const char* key);

// A finite number.
double numberField(const Napi::Object& object, const char* key, const std::string& what);
// A whole number in [min, max]. `noun` is what the message calls it: "a whole number", or
// "an integer" (decodeJpegInto's messages).
int64_t wholeNumber(const Napi::Value& value, const std::string& what, int64_t min, int64_t max);
int64_t wholeNumber(const Napi::Value& value, const std::string& what, int64_t min, int64_t max, const char* noun);
int64_t intField(const Napi::Object& object, const char* key, const std::string& what, int64_t min, int64_t max);
bool boolField(const Napi::Object& object, const char* key, const std::string& what);
std::string stringField(const Napi::Object& object, const char* key, const std::string& what);
std::string stringArg(const Napi::Value& value, const std::string& what);

// The caller's Uint8Array itself, not a copy; `expected` describes it ("a Uint8Array or Buffer").
Napi::Uint8Array uint8Array(const Napi::Value& value, const std::string& what, const std::string& expected);
// Copies of a typed array's elements (Float32Array -> float, Int32Array -> int32_t).
std::vector<float> floatArray(const Napi::Value& value, const std::string& what);
std::vector<int32_t> int32Array(const Napi::Value& value, const std::string& what);
// A plain array of numbers, a Float32Array or a Float64Array (mean/std, lrs, a box).
std::vector<double> numberList(const Napi::Value& value, const std::string& what);

// Checks for arrays read above.
void requireLength(size_t actual, size_t expected, const std::string& what, const std::string& expectation);
void requireFinite(const std::vector<float>& values, const std::string& what);

// A CPU float copy of `tensor` as a Float32Array (results are small: probabilities, losses).
Napi::Float32Array toFloat32Array(Napi::Env env, const at::Tensor& tensor);

}  // namespace torchts
