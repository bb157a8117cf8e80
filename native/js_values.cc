#include "js_values.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "errors.h"
#include "torch_compat.h"

namespace torchts {
namespace {

template <typename T>
std::vector<T> typedArray(const Napi::Value& value, napi_typedarray_type type, const char* typeName,
                          const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    badInput(what + " must be " + typeName + "; got " + describe(value));
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

bool isTypedArrayOf(const Napi::Value& value, napi_typedarray_type type) {
  return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == type;
}

}  // namespace

std::string describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) {
    std::ostringstream out;
    out << "the number " << value.As<Napi::Number>().DoubleValue();
    return out.str();
  }
  if (value.IsString()) return "the string '" + value.As<Napi::String>().Utf8Value() + "'";
  if (value.IsBoolean()) return "a boolean";
  if (value.IsArray()) return "an Array";
  if (value.IsTypedArray()) {
    switch (value.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_uint8_array: return "a Uint8Array";
      case napi_int32_array: return "an Int32Array";
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      default: return "another typed array";
    }
  }
  if (value.IsFunction()) return "a function";
  return "an object";
}

Napi::Object objectArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray() || value.IsFunction()) {
    badInput(what + " must be an object; got " + describe(value));
  }
  return value.As<Napi::Object>();
}

Napi::Array arrayArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) badInput(what + " must be an Array; got " + describe(value));
  return value.As<Napi::Array>();
}

bool hasField(const Napi::Object& object, const char* key) {
  auto value = object.Get(key);
  return !value.IsUndefined() && !value.IsNull();
}

double numberField(const Napi::Object& object, const char* key, const std::string& what) {
  auto value = object.Get(key);
  if (!value.IsNumber()) badInput(what + " must be a number; got " + describe(value));
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number)) badInput(what + " must be a finite number; got " + describe(value));
  return number;
}

int64_t wholeNumber(const Napi::Value& value, const std::string& what, int64_t min, int64_t max, const char* noun) {
  const double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
  if (!(number >= static_cast<double>(min) && number <= static_cast<double>(max) && number == std::floor(number))) {
    badInput(what + " must be " + noun + " in [" + std::to_string(min) + ", " + std::to_string(max) + "]; got " +
             describe(value));
  }
  return static_cast<int64_t>(number);
}

int64_t wholeNumber(const Napi::Value& value, const std::string& what, int64_t min, int64_t max) {
  return wholeNumber(value, what, min, max, "a whole number");
}

int64_t intField(const Napi::Object& object, const char* key, const std::string& what, int64_t min, int64_t max) {
  return wholeNumber(object.Get(key), what, min, max);
}

std::string stringArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) badInput(what + " must be a string; got " + describe(value));
  return value.As<Napi::String>().Utf8Value();
}

bool boolField(const Napi::Object& object, const char* key, const std::string& what) {
  const auto value = object.Get(key);
  if (!value.IsBoolean()) badInput(what + " must be true or false; got " + describe(value));
  return value.As<Napi::Boolean>().Value();
}

std::string stringField(const Napi::Object& object, const char* key, const std::string& what) {
  return stringArg(object.Get(key), what);
}

Napi::Uint8Array uint8Array(const Napi::Value& value, const std::string& what, const std::string& expected) {
  if (!isTypedArrayOf(value, napi_uint8_array)) badInput(what + " must be " + expected + "; got " + describe(value));
  return value.As<Napi::Uint8Array>();
}

std::vector<float> floatArray(const Napi::Value& value, const std::string& what) {
  return typedArray<float>(value, napi_float32_array, "a Float32Array", what);
}

std::vector<int32_t> int32Array(const Napi::Value& value, const std::string& what) {
  return typedArray<int32_t>(value, napi_int32_array, "an Int32Array", what);
}

std::vector<double> numberList(const Napi::Value& value, const std::string& what) {
  if (value.IsArray()) {
    std::vector<double> out;
    auto array = value.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      auto item = array.Get(i);
      if (!item.IsNumber()) badInput(what + "[" + std::to_string(i) + "] must be a number; got " + describe(item));
      out.push_back(item.As<Napi::Number>().DoubleValue());
    }
    return out;
  }
  if (isTypedArrayOf(value, napi_float32_array)) {
    auto f = floatArray(value, what);
    return std::vector<double>(f.begin(), f.end());
  }
  if (isTypedArrayOf(value, napi_float64_array)) {
    auto array = value.As<Napi::Float64Array>();
    return std::vector<double>(array.Data(), array.Data() + array.ElementLength());
  }
  badInput(what + " must be an array of numbers; got " + describe(value));
}

void requireLength(size_t actual, size_t expected, const std::string& what, const std::string& expectation) {
  if (actual != expected) {
    badInput(what + " has " + std::to_string(actual) + " entries; expected " + expectation + " = " +
             std::to_string(expected));
  }
}

void requireFinite(const std::vector<float>& values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) badInput(what + "[" + std::to_string(i) + "] is not a finite number");
  }
}

Napi::Float32Array toFloat32Array(Napi::Env env, const at::Tensor& tensor) {
  auto t = tensor.to(torch::kCPU, torch::kFloat).contiguous();
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(t.numel()));
  if (t.numel() > 0) std::memcpy(out.Data(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

}  // namespace torchts
