// XEP-0202: Entity Time, in UTC (XEP-0082 format).
#include <chrono>
#include <ctime>

#include "server/core/host.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::modules {
namespace {

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

class Time final : public core::Module {
 public:
  void load(core::Host& host) override {
    host.add_feature(std::string(ns::time));
    host.events().on("iq-get/host/urn:xmpp:time:time", 0, [](core::StanzaEvent& ev) {
      auto result = xmpp::iq_result(ev.stanza);
      auto& t = result.add("time", std::string(ns::time));
      t.add("tzo").add_text("+00:00");
      t.add("utc").add_text(utc_now());
      return reply(ev, std::move(result));
    });
  }
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("time", "XEP-0202: Entity Time", herald::modules::Time)
