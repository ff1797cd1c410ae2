#include "server/xmpp/stanza.hpp"

#include <ctime>

#include <array>

#include "server/xml/serializer.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::xmpp {
namespace {

constexpr std::array kStreamErrorNames = {
    "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
    "host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
    "invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed", "policy-violation",
    "remote-connection-failed", "reset", "resource-constraint", "restricted-xml", "see-other-host",
    "system-shutdown", "undefined-condition", "unsupported-encoding", "unsupported-feature",
    "unsupported-stanza-type", "unsupported-version",
};

struct StanzaErrorInfo {
  const char* name;
  const char* type;
};
constexpr std::array<StanzaErrorInfo, 22> kStanzaErrors = {{
    {"bad-request", "modify"}, {"conflict", "cancel"}, {"feature-not-implemented", "cancel"},
    {"forbidden", "auth"}, {"gone", "cancel"}, {"internal-server-error", "cancel"},
    {"item-not-found", "cancel"}, {"jid-malformed", "modify"}, {"not-acceptable", "modify"},
    {"not-allowed", "cancel"}, {"not-authorized", "auth"}, {"policy-violation", "modify"},
    {"recipient-unavailable", "wait"}, {"redirect", "modify"}, {"registration-required", "auth"},
    {"remote-server-not-found", "cancel"}, {"remote-server-timeout", "wait"},
    {"resource-constraint", "wait"}, {"service-unavailable", "cancel"},
    {"subscription-required", "auth"}, {"undefined-condition", "cancel"},
    {"unexpected-request", "wait"},
}};

void swap_addresses(xml::Element& e, const xml::Element& original) {
  const std::string* to = original.attr("to");
  const std::string* from = original.attr("from");
  e.remove_attr("to");
  e.remove_attr("from");
  if (from) e.set_attr("to", *from);
  if (to) e.set_attr("from", *to);
}

}  // namespace

std::string_view name(StreamError e) { return kStreamErrorNames[static_cast<std::size_t>(e)]; }

std::string stream_error_xml(StreamError e, std::string_view text, std::string_view app_condition) {
  std::string out = "<stream:error><";
  out += name(e);
  out += " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>";
  if (!text.empty()) {
    out += "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>";
    out += xml::escape_text(text);
    out += "</text>";
  }
  out += app_condition;
  out += "</stream:error>";
  return out;
}

std::string_view name(StanzaError e) { return kStanzaErrors[static_cast<std::size_t>(e)].name; }
std::string_view error_type(StanzaError e) { return kStanzaErrors[static_cast<std::size_t>(e)].type; }

Kind kind_of(const xml::Element& s) {
  if (s.ns() != ns::client && s.ns() != ns::server) return Kind::other;
  if (s.name() == "message") return Kind::message;
  if (s.name() == "presence") return Kind::presence;
  if (s.name() == "iq") return Kind::iq;
  return Kind::other;
}

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::message: return "message";
    case Kind::presence: return "presence";
    case Kind::iq: return "iq";
    case Kind::other: break;
  }
  return "other";
}

std::optional<xml::Element> error_reply(const xml::Element& stanza, StanzaError cond, std::string_view text) {
  if (stanza.attr_or("type") == "error") return std::nullopt;
  xml::Element reply = stanza;
  swap_addresses(reply, stanza);
  reply.set_attr("type", "error");
  // An iq result or error carries no request payload worth echoing; a message or presence
  // keeps its body so the sender can tell which one failed.
  if (kind_of(stanza) == Kind::iq) reply.clear_children();
  auto& err = reply.add("error", std::string(stanza.ns()));
  err.set_attr("type", std::string(error_type(cond)));
  err.add(std::string(name(cond)), std::string(ns::stanza_errors));
  if (!text.empty()) err.add("text", std::string(ns::stanza_errors)).add_text(std::string(text));
  return reply;
}

xml::Element iq_result(const xml::Element& iq) {
  xml::Element reply("iq", iq.ns());
  if (const auto* id = iq.attr("id")) reply.set_attr("id", *id);
  reply.set_attr("type", "result");
  if (const auto* from = iq.attr("from")) reply.set_attr("to", *from);
  if (const auto* to = iq.attr("to")) reply.set_attr("from", *to);
  return reply;
}

std::string utc_stamp(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace herald::xmpp
