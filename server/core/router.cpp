#include "server/core/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "server/core/host.hpp"
#include "server/core/server.hpp"
#include "server/core/session.hpp"
#include "server/core/worker.hpp"
#include "server/xml/serializer.hpp"
#include "storage/stores.hpp"

namespace herald::core {

using xmpp::Jid;
using xmpp::Kind;
using xmpp::StanzaError;

namespace {

std::string_view dest_of(const Jid& to) {
  if (to.is_domain()) return "host";
  return to.is_bare() ? "bare" : "full";
}

bool valid_iq(const xml::Element& iq) {
  const auto type = iq.attr_or("type");
  if (!iq.attr("id")) return false;
  if (type == "get" || type == "set") return iq.elements().size() == 1;
  return type == "result" || type == "error";
}

std::string iq_event_name(const xml::Element& iq, std::string_view dest) {
  const auto type = iq.attr_or("type");
  const auto* payload = iq.first_element();
  std::string name = "iq-";
  name += type;
  name += '/';
  name += dest;
  name += '/';
  if (payload) {
    name += payload->ns();
    name += ':';
    name += payload->name();
  }
  return name;
}

}  // namespace

void Router::send_to(Session& session, std::shared_ptr<const std::string> xml) { session.deliver(std::move(xml)); }

void Router::send_to(Session& session, const xml::Element& stanza) {
  send_to(session, std::make_shared<const std::string>(xml::serialize(stanza)));
}

awaitable<void> Router::from_client(Session& origin, xml::Element stanza) {
  const Kind kind = xmpp::kind_of(stanza);
  const Jid& from = origin.jid();
  stanza.set_attr("from", from.str());

  Jid to;
  if (const auto* t = stanza.attr("to")) {
    auto parsed = Jid::parse(*t);
    if (!parsed) {
      // The reply cannot come "from" a malformed address: it comes from our domain.
      if (auto reply = xmpp::error_reply(stanza, StanzaError::jid_malformed)) {
        reply->set_attr("from", from.domain());
        send_to(origin, *reply);
      }
      co_return;
    }
    to = std::move(*parsed);
    stanza.set_attr("to", to.str());
  }

  if (kind == Kind::iq && !valid_iq(stanza)) {
    if (auto reply = xmpp::error_reply(stanza, StanzaError::bad_request, "iq needs an id, a type, and one payload for get/set")) {
      reply->set_attr("from", to.empty() ? from.bare_str() : to.str());
      if (to.empty()) reply->remove_attr("from");
      send_to(origin, *reply);
    }
    co_return;
  }

  Host* host = server_.host(from.domain());
  if (!host) co_return;  // cannot happen: the session was authenticated on a served domain

  if (to.empty()) {
    if (kind == Kind::presence) {
      StanzaEvent ev{*host, stanza, from, {}, &origin};
      if (co_await host->events().fire("presence/broadcast", ev) == Result::pass)
        update_availability(origin, stanza);
      co_return;
    }
    // RFC 6120 §10.3: no 'to' means the user's own account. Stamping it makes replies
    // come from the bare JID, which the RFC allows (§10.3.3), instead of nowhere.
    to = from.bare();
    stanza.set_attr("to", to.str());
  }

  StanzaEvent ev{*host, stanza, from, to, &origin};
  std::string pre = "pre-";
  pre += xmpp::kind_name(kind);
  pre += '/';
  pre += dest_of(to);
  if (co_await host->events().fire(pre, ev) == Result::handled) co_return;
  co_await route_to(stanza, from, to, &origin);
}

awaitable<void> Router::route(xml::Element stanza) {
  auto to = Jid::parse(stanza.attr_or("to"));
  auto from = Jid::parse(stanza.attr_or("from"));
  if (!to || !from) {
    spdlog::debug("router: dropping stanza with unusable addresses");
    co_return;
  }
  co_await route_to(stanza, *from, *to, nullptr);
}

awaitable<void> Router::route_to(xml::Element& stanza, const Jid& from, const Jid& to, Session* origin) {
  Host* host = server_.host(to.domain());
  if (!host) {
    if (Host* sender = server_.host(from.domain())) {
      StanzaEvent ev{*sender, stanza, from, to, origin};
      if (co_await sender->events().fire("route/remote", ev) == Result::handled) co_return;
    }
    co_await bounce(stanza, StanzaError::remote_server_not_found, "federation is disabled on this server");
    co_return;
  }

  const Kind kind = xmpp::kind_of(stanza);
  const auto dest = dest_of(to);
  StanzaEvent ev{*host, stanza, from, to, origin};
  if (dest != "host") {
    std::string name = "inbound/";
    name += dest;
    if (co_await host->events().fire(name, ev) == Result::handled) co_return;
  }
  if (kind == Kind::iq) {
    const auto type = stanza.attr_or("type");
    if (type == "get" || type == "set") {
      if (co_await host->events().fire(iq_event_name(stanza, dest), ev) == Result::handled) co_return;
    }
    std::string name = "iq/";
    name += dest;
    if (co_await host->events().fire(name, ev) == Result::handled) co_return;
  } else {
    std::string name(xmpp::kind_name(kind));
    name += '/';
    name += dest;
    if (co_await host->events().fire(name, ev) == Result::handled) co_return;
  }
  co_await default_local(ev, kind, dest);
}

awaitable<bool> Router::account_exists(const Jid& bare) {
  if (!server_.directory().resources(bare).empty()) co_return true;
  co_return co_await Worker::current()->accounts().exists(bare.domain(), bare.local());
}

awaitable<void> Router::default_local(StanzaEvent& ev, Kind kind, std::string_view dest) {
  auto& stanza = ev.stanza;
  const auto type = stanza.attr_or("type");
  auto& directory = server_.directory();

  switch (kind) {
    case Kind::message: {
      if (dest == "full") {
        if (auto session = directory.find(ev.to)) {
          send_to(*session, stanza);
          std::vector<Session*> got(1, session.get());
          ev.host.delivered(ev, got);
          co_return;
        }
        // RFC 6121 §8.5.3.2.1: no such resource.
        if (type == "error") co_return;
        if (type == "groupchat") {
          co_await bounce(stanza, StanzaError::service_unavailable);
          co_return;
        }
        StanzaEvent bare_ev{ev.host, stanza, ev.from, ev.to.bare(), ev.origin};
        co_await deliver_message_to_bare(bare_ev);
        co_return;
      }
      if (dest == "bare") {
        co_await deliver_message_to_bare(ev);
        co_return;
      }
      co_return;  // messages to the server itself: nothing handles them yet, drop quietly
    }
    case Kind::presence: {
      if (dest == "full") {
        if (auto session = directory.find(ev.to)) send_to(*session, stanza);
        co_return;
      }
      if (dest == "bare") {
        auto serialized = std::make_shared<const std::string>(xml::serialize(stanza));
        for (auto& s : directory.resources(ev.to))
          if (s->available.load() && ev.host.may_deliver(*s, ev)) send_to(*s, serialized);
      }
      co_return;
    }
    case Kind::iq: {
      const bool request = type == "get" || type == "set";
      if (dest == "full") {
        if (auto session = directory.find(ev.to)) {
          send_to(*session, stanza);
          co_return;
        }
      }
      if (request) co_await bounce(stanza, StanzaError::service_unavailable);
      co_return;
    }
    case Kind::other: co_return;
  }
}

awaitable<void> Router::deliver_message_to_bare(StanzaEvent& ev, bool redelivery) {
  auto& stanza = ev.stanza;
  auto type = stanza.attr_or("type");
  if (type.empty()) type = "normal";
  if (type == "error") co_return;
  if (type == "groupchat") {
    co_await bounce(stanza, StanzaError::service_unavailable);
    co_return;
  }

  auto sessions = server_.directory().resources(ev.to);
  std::erase_if(sessions, [&](const auto& s) {
    return !s->available.load() || s->priority.load() < 0 || (redelivery && s->ending.load());
  });
  if (!sessions.empty()) {
    std::erase_if(sessions, [&](const auto& s) { return !ev.host.may_deliver(*s, ev); });
    if (sessions.empty()) {
      // Online, but the rules of every eligible session refuse it (XEP-0016 §2.13): the
      // sender gets the error an offline blocked user's server gives, not offline storage.
      if (type != "headline") co_await bounce(stanza, StanzaError::service_unavailable);
      co_return;
    }
    auto serialized = std::make_shared<const std::string>(xml::serialize(stanza));
    std::vector<Session*> got;
    if (type == "headline") {
      for (auto& s : sessions) {
        send_to(*s, serialized);
        got.push_back(s.get());
      }
    } else {
      // normal and chat: the highest-priority resource(s) (RFC 6121 §8.5.2.1.1).
      int best = -129;
      for (auto& s : sessions) best = std::max(best, s->priority.load());
      for (auto& s : sessions) {
        if (s->priority.load() != best) continue;
        send_to(*s, serialized);
        got.push_back(s.get());
      }
    }
    if (!redelivery) ev.host.delivered(ev, got);
    co_return;
  }

  bool exists = false;
  bool storage_failed = false;
  try {
    exists = co_await account_exists(ev.to);
  } catch (const std::exception& e) {
    spdlog::warn("router: cannot check account {}: {}", ev.to.bare_str(), e.what());
    storage_failed = true;
  }
  if (storage_failed) {
    // Never a silent loss: the sender learns the message was not delivered.
    co_await bounce(stanza, StanzaError::internal_server_error, "storage unavailable");
    co_return;
  }
  if (exists) {
    if (co_await ev.host.events().fire("message/offline", ev) == Result::handled) co_return;
  }
  // No account, or nobody stores messages for it: tell the sender (RFC 6121 §8.5.2.2).
  if (type == "headline") co_return;
  co_await bounce(stanza, StanzaError::service_unavailable);
}

awaitable<void> Router::redeliver(xml::Element message) {
  auto to = Jid::parse(message.attr_or("to"));
  auto sender = Jid::parse(message.attr_or("from"));
  if (!to || !sender) co_return;
  Host* host = server_.host(to->domain());
  if (!host || to->is_domain()) co_return;
  StanzaEvent ev{*host, message, *sender, to->bare(), nullptr};
  co_await deliver_message_to_bare(ev, true);
}

void Router::update_availability(Session& session, const xml::Element& presence) {
  const auto type = presence.attr_or("type");
  if (type.empty()) {
    int priority = 0;
    const auto text = presence.child_text("priority", presence.ns());
    if (!text.empty()) {
      int value = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && ptr == text.data() + text.size() && value >= -128 && value <= 127) priority = value;
    }
    session.priority.store(priority);
    session.available.store(true);
  } else if (type == "unavailable") {
    session.available.store(false);
  }
}

awaitable<void> Router::bounce(const xml::Element& stanza, StanzaError error, std::string_view text) {
  auto reply = xmpp::error_reply(stanza, error, text);
  if (!reply) co_return;
  co_await route(std::move(*reply));
}

}  // namespace herald::core
