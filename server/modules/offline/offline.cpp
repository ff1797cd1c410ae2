// XEP-0160 offline messages: a message for an account with no available resource is kept
// in PostgreSQL (RFC 6121 §8.5.2.2.1 for chat and normal) with a XEP-0203 delay stamp and
// delivered in order when the user next sends initial presence. A full store bounces with
// resource-constraint; a failing database bounces with internal-server-error: the sender
// always learns that a message was not kept.
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "server/core/host.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/session.hpp"
#include "server/core/worker.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/xml/serializer.hpp"
#include "storage/stores.hpp"

namespace herald::modules {
namespace {

using xmpp::StanzaError;

constexpr std::string_view kHints = "urn:xmpp:hints";
constexpr std::size_t kBatch = 100;


enum class Keep { store, drop };

// Whether a message is worth keeping for later. Chat states and other transient payloads
// are not (XEP-0085 §5.5, XEP-0334 no-store); anything with a body, an end-to-end
// encrypted payload, a receipt or marker, or an explicit <store/> hint is.
Keep classify(const xml::Element& message) {
  bool store_hint = false;
  for (const auto* child : message.elements()) {
    if (child->ns() == kHints) {
      if (child->name() == "no-store") return Keep::drop;
      if (child->name() == "store") store_hint = true;
    }
  }
  if (store_hint) return Keep::store;
  for (const auto* child : message.elements()) {
    const auto& ns = child->ns();
    const auto& name = child->name();
    if (name == "body" || name == "subject") return Keep::store;
    if (name == "encrypted" && (ns == "eu.siacs.conversations.axolotl" || ns == "urn:xmpp:omemo:2")) return Keep::store;
    if (ns == "jabber:x:encrypted" || ns == "urn:xmpp:openpgp:0") return Keep::store;
    if (ns == "urn:xmpp:receipts" && name == "received") return Keep::store;
    if (ns == "urn:xmpp:chat-markers:0") return Keep::store;
    if (ns == "jabber:x:conference" || ns == "http://jabber.org/protocol/muc#user") return Keep::store;  // invitations
  }
  return Keep::drop;
}

class Offline final : public core::Module {
 public:
  void load(core::Host& host) override {
    host_ = &host;
    host.add_feature("msgoffline");
    host.events().on("message/offline", 0, [this](core::StanzaEvent& e) { return store(e); });
    // A <delay/> claiming to come from this server is ours to add: a sender's copy would
    // pass for the server's offline stamp (XEP-0203 §4), so it is removed on the way in.
    for (const char* name : {"inbound/bare", "inbound/full"})
      host.events().on(name, 95, [](core::StanzaEvent& e) -> awaitable<core::Result> {
        if (e.stanza.name() == "message" && e.from.str() != e.to.domain()) {
          std::erase_if(e.stanza.nodes(), [&](const xml::Element& c) {
            return !c.is_text() && c.name() == "delay" && c.ns() == "urn:xmpp:delay" && c.attr_or("from") == e.to.domain();
          });
        }
        co_return core::Result::pass;
      });
    host.on_session_available([this](std::shared_ptr<core::Session> s) { return deliver(std::move(s)); });
  }

 private:
  awaitable<core::Result> store(core::StanzaEvent& ev) {
    auto type = ev.stanza.attr_or("type");
    if (type.empty()) type = "normal";
    // RFC 6121 §8.5.2.2.1: chat and normal are stored; headline is dropped; groupchat
    // and error never get here.
    if (type != "chat" && type != "normal") co_return core::Result::pass;
    if (classify(ev.stanza) == Keep::drop) co_return core::Result::handled;  // silently, like a headline

    if (!ev.stanza.child("delay", "urn:xmpp:delay")) {
      auto& delay = ev.stanza.add("delay", "urn:xmpp:delay");
      delay.set_attr("from", ev.host.domain());
      delay.set_attr("stamp", xmpp::utc_stamp(std::chrono::system_clock::now()));
      delay.add_text("Offline Storage");
    }
    const auto limit = ev.host.server().config().offline.max_messages;
    if (limit == 0) co_return co_await reply_error(ev, StanzaError::resource_constraint, "offline storage is off");
    auto serialized = xml::serialize(ev.stanza);
    storage::OfflineStore::Put put = storage::OfflineStore::Put::no_account;
    bool failed = false;
    try {
      put = co_await core::Worker::current()->offline().put(ev.to.domain(), ev.to.local(), std::move(serialized), limit);
    } catch (const std::exception& e) {
      spdlog::error("offline storage for {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error, "offline storage is unavailable");
    switch (put) {
      case storage::OfflineStore::Put::stored: {
        // The user may have come online while this was being stored, after the delivery
        // at their initial presence had read the store: hand it over now.
        std::shared_ptr<core::Session> online;
        for (auto& s : ev.host.server().directory().resources(ev.to))
          if (s->available.load() && s->priority.load() >= 0 && !s->ending.load()) online = s;
        if (online) co_await deliver(online);
        co_return core::Result::handled;
      }
      case storage::OfflineStore::Put::full:
        spdlog::info("offline storage of {} is full ({} messages): bouncing", ev.to.bare_str(), limit);
        co_return co_await reply_error(ev, StanzaError::resource_constraint, "the recipient's offline storage is full");
      case storage::OfflineStore::Put::no_account: break;
    }
    co_return core::Result::pass;  // the router answers service-unavailable
  }

  // XEP-0160 §3: on initial presence, everything stored, oldest first; removed once queued
  // to the session (a stream-management session that then fails re-stores what it did
  // not acknowledge; and every stored message with a body is also in the archive).
  awaitable<void> deliver(std::shared_ptr<core::Session> session) {
    const auto user = session->jid().bare();
    // One delivery per user at a time: two resources coming online together must not
    // both send what they loaded before either removed it. A request that finds one
    // running marks it to look again before it finishes (a message stored meanwhile).
    {
      std::lock_guard lock(mutex_);
      auto [it, inserted] = delivering_.try_emplace(user.bare_str(), false);
      if (!inserted) {
        it->second = true;
        co_return;
      }
    }
    struct Release {
      Offline* self;
      std::string user;
      ~Release() {
        std::lock_guard lock(self->mutex_);
        self->delivering_.erase(user);
      }
    } release{this, user.bare_str()};
    while (co_await deliver_stored(session, user)) {
      std::lock_guard lock(mutex_);
      auto& again = delivering_[user.bare_str()];
      if (!again) break;
      again = false;
    }
  }

  // Sends and removes everything stored; false if the session went away meanwhile.
  awaitable<bool> deliver_stored(const std::shared_ptr<core::Session>& session, const xmpp::Jid& user) {
    auto& store = core::Worker::current()->offline();
    for (;;) {
      auto batch = co_await store.load(user.domain(), user.local(), kBatch);
      if (batch.empty()) co_return true;
      std::vector<std::int64_t> ids;
      ids.reserve(batch.size());
      // A session that went away meanwhile leaves the rest stored for the next login.
      if (!session->available.load() || host_->server().directory().find(session->jid()) != session) co_return false;
      for (auto& m : batch) {
        core::Router::send_to(*session, std::make_shared<const std::string>(std::move(m.stanza)));
        ids.push_back(m.id);
      }
      co_await store.remove(user.domain(), user.local(), std::move(ids));
      if (batch.size() < kBatch) co_return true;
    }
  }

  core::Host* host_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<std::string, bool> delivering_;  // user -> look again when done
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("offline", "XEP-0160: offline messages", herald::modules::Offline)
