// A feature is a module: it declares itself with HERALD_MODULE in its own folder, and on
// load() registers its hooks, IQ handlers and disco features on one host. Deleting a module
// folder must not break the core; the module library is linked whole so registration by
// static initialisation survives the linker.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

namespace herald::core {

class Host;

class Module {
 public:
  virtual ~Module() = default;
  virtual void load(Host& host) = 0;
};

struct ModuleInfo {
  std::string_view name;
  std::string_view implements;  // e.g. "XEP-0199: XMPP Ping"
  std::unique_ptr<Module> (*make)();
};

bool register_module(ModuleInfo info);
const std::vector<ModuleInfo>& registered_modules();

}  // namespace herald::core

#define HERALD_MODULE(NAME, IMPLEMENTS, CLASS)                                               \
  namespace {                                                                                \
  [[maybe_unused]] const bool herald_module_registered_ = ::herald::core::register_module(   \
      {NAME, IMPLEMENTS, []() -> std::unique_ptr<::herald::core::Module> {                   \
         return std::make_unique<CLASS>();                                                   \
       }});                                                                                  \
  }
