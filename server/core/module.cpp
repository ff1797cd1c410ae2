#include "server/core/module.hpp"

namespace herald::core {
namespace {
std::vector<ModuleInfo>& registry() {
  static std::vector<ModuleInfo> modules;
  return modules;
}
}  // namespace

bool register_module(ModuleInfo info) {
  registry().push_back(info);
  return true;
}

const std::vector<ModuleInfo>& registered_modules() { return registry(); }

}  // namespace herald::core
