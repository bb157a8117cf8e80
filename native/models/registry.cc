#include "registry.h"

#include <functional>
#include <stdexcept>

#include "resnet.h"
#include "xresnet.h"

namespace torchts {
namespace {

struct Entry {
  const char* name;
  std::function<ClassifierPtr(int64_t)> make;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> all = {
      {"resnet18", [](int64_t n) { return makeResNet(18, n); }},
      {"resnet34", [](int64_t n) { return makeResNet(34, n); }},
      {"resnet50", [](int64_t n) { return makeResNet(50, n); }},
      {"xresnet18", [](int64_t n) { return makeXResNet(18, n); }},
      {"xresnet34", [](int64_t n) { return makeXResNet(34, n); }},
      {"xresnet50", [](int64_t n) { return makeXResNet(50, n); }},
  };
  return all;
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::vector<NamedTensors> groupByPrefix(torch::nn::Module& model, const std::vector<std::string>& stemPrefixes,
                                        const std::string& headPrefix) {
  std::vector<NamedTensors> groups(3);
  for (const auto& p : model.named_parameters(true)) {
    const std::string& name = p.key();
    size_t group = 1;
    for (const auto& prefix : stemPrefixes) {
      if (startsWith(name, prefix)) group = 0;
    }
    if (startsWith(name, headPrefix + ".")) group = 2;
    groups[group].emplace_back(name, p.value());
  }
  return groups;
}

std::vector<std::string> modelNames() {
  std::vector<std::string> names;
  for (const auto& e : entries()) names.emplace_back(e.name);
  return names;
}

ClassifierPtr createModel(const std::string& arch, int64_t numClasses) {
  for (const auto& e : entries()) {
    if (arch != e.name) continue;
    if (numClasses < 1) {
      throw std::invalid_argument("numClasses must be at least 1 for " + arch + ", got " +
                                  std::to_string(numClasses));
    }
    return e.make(numClasses);
  }
  std::string known;
  for (const auto& e : entries()) known += (known.empty() ? "" : ", ") + std::string(e.name);
  throw std::invalid_argument("unknown arch '" + arch + "'; known: " + known);
}

}  // namespace torchts
