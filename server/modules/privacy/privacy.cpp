// Access rules (RFC 2779 2.3, 5.1.13-5.1.16): XEP-0016 privacy lists, the XEP-0191
// blocking command and XEP-0186 invisibility as front ends of one engine (PrivacyService),
// and its enforcement on every path a stanza takes:
//   - inbound/<bare|full> (destination host): stanzas to a resource by that session's
//     rules; subscription stanzas, probes and IQs the server handles for the account by
//     the default list;
//   - the router's delivery filter: each session a bare-JID message or presence would
//     reach, by that session's rules;
//   - message/offline: the default list while nobody is online;
//   - pre-<kind>/<dest> (sender's host): what the user's client sends;
//   - the presence module asks PrivacyService before every broadcast and probe answer.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "server/core/host.hpp"
#include "server/core/worker.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/modules/privacy/privacy_service.hpp"
#include "server/modules/roster/roster_service.hpp"
#include "server/sasl/crypto.hpp"

namespace herald::modules {
namespace {

using privacy::Check;
using storage::PrivacyLists;
using xmpp::Jid;
using xmpp::StanzaError;

constexpr std::string_view kInvisible0 = "urn:xmpp:invisible:0";
constexpr std::string_view kInvisible1 = "urn:xmpp:invisible:1";

// What a failed request becomes: an error for the client, decided inside a pure update.
struct Refusal {
  StanzaError error;
  std::string text;
};

class Privacy final : public core::Module {
 public:
  void load(core::Host& host) override {
    host_ = &host;
    service_ = &host.service<PrivacyService>();
    roster_ = &host.service<RosterService>();
    const auto& limits = host.server().config().limits;
    max_lists_ = limits.privacy_lists;
    max_items_ = limits.privacy_list_items;

    for (auto ns : {privacy::kPrivacyNs, privacy::kBlockingNs, kInvisible0, kInvisible1}) host.add_feature(std::string(ns));

    // The session's state is dropped by the presence module once its unavailable presence
    // is out (that presence still obeys the session's rules and visibility).
    host.on_session_bound([this](std::shared_ptr<core::Session> s) -> awaitable<void> { co_await service_->session_bound(s); });
    host.on_session_moved([this](const core::Session& from, core::Session& to) { service_->session_moved(from, to); });

    auto& ev = host.events();
    // Enforcement runs ahead of every module (priority 100).
    for (const char* name : {"inbound/bare", "inbound/full"})
      ev.on(name, 100, [this](core::StanzaEvent& e) { return inbound(e); });
    ev.on("message/offline", 100, [this](core::StanzaEvent& e) { return offline(e); });
    for (const char* kind : {"message", "presence", "iq"})
      for (const char* dest : {"host", "bare", "full"})
        ev.on(std::string("pre-") + kind + "/" + dest, 100, [this](core::StanzaEvent& e) { return outbound(e); });
    host.add_delivery_filter([this](core::Session& s, const core::StanzaEvent& e) {
      const auto check = privacy::classify(xmpp::kind_of(e.stanza), e.stanza.attr_or("type"), true);
      return service_->check_session(s, check, e.from).allow;
    });

    ev.on("iq-get/bare/jabber:iq:privacy:query", 0, [this](core::StanzaEvent& e) { return privacy_get(e); });
    ev.on("iq-set/bare/jabber:iq:privacy:query", 0, [this](core::StanzaEvent& e) { return privacy_set(e); });
    ev.on("iq-get/bare/urn:xmpp:blocking:blocklist", 0, [this](core::StanzaEvent& e) { return blocklist_get(e); });
    ev.on("iq-set/bare/urn:xmpp:blocking:block", 0, [this](core::StanzaEvent& e) { return block(e, true); });
    ev.on("iq-set/bare/urn:xmpp:blocking:unblock", 0, [this](core::StanzaEvent& e) { return block(e, false); });
    for (auto ns : {kInvisible0, kInvisible1}) {
      ev.on("iq-set/bare/" + std::string(ns) + ":invisible", 0, [this](core::StanzaEvent& e) { return visibility(e, true); });
      ev.on("iq-set/bare/" + std::string(ns) + ":visible", 0, [this](core::StanzaEvent& e) { return visibility(e, false); });
    }
  }

 private:
  core::Router& router() { return host_->server().router(); }
  core::SessionDirectory& directory() { return host_->server().directory(); }

  // --- enforcement ----------------------------------------------------------------------

  // XEP-0016 §2.13 / XEP-0191 §3.3: how a blocked stanza to the user is answered.
  awaitable<core::Result> refuse_inbound(core::StanzaEvent& ev) {
    const auto kind = xmpp::kind_of(ev.stanza);
    const auto type = ev.stanza.attr_or("type");
    if (kind == xmpp::Kind::message || (kind == xmpp::Kind::iq && (type == "get" || type == "set")))
      co_await router().bounce(ev.stanza, StanzaError::service_unavailable);
    co_return core::Result::handled;  // presence, IQ results and errors: silently dropped
  }

  awaitable<core::Result> inbound(core::StanzaEvent& ev) {
    const auto kind = xmpp::kind_of(ev.stanza);
    const auto check = privacy::classify(kind, ev.stanza.attr_or("type"), true);
    const bool account_level = kind == xmpp::Kind::iq || (kind == xmpp::Kind::presence && check == Check::other);
    if (!ev.to.is_bare() && !(kind == xmpp::Kind::presence && check == Check::other)) {
      if (auto session = directory().find(ev.to)) {
        if (!service_->check_session(*session, check, ev.from).allow) co_return co_await refuse_inbound(ev);
        co_return core::Result::pass;
      }
    }
    // Messages and presence notifications to the bare JID are decided per session by the
    // delivery filter, and by message/offline when nobody is online.
    if (!account_level) co_return core::Result::pass;
    // Subscription stanzas, probes and IQs are handled for the account: the default list.
    PrivacyService::Verdict verdict;
    bool failed = false;
    try {
      verdict = co_await service_->check_account(ev.to.bare(), check, ev.from);
    } catch (const std::exception& e) {
      spdlog::error("privacy lists of {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) {
      // The rules cannot be read: refuse rather than let a blocked sender through.
      if (kind == xmpp::Kind::iq) co_await router().bounce(ev.stanza, StanzaError::internal_server_error);
      co_return core::Result::handled;
    }
    if (!verdict.allow) co_return co_await refuse_inbound(ev);
    co_return core::Result::pass;
  }

  awaitable<core::Result> offline(core::StanzaEvent& ev) {
    PrivacyService::Verdict verdict;
    bool failed = false;
    try {
      verdict = co_await service_->check_account(ev.to.bare(), Check::message_in, ev.from);
    } catch (const std::exception& e) {
      spdlog::error("privacy lists of {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) {
      co_await router().bounce(ev.stanza, StanzaError::internal_server_error, "storage unavailable");
      co_return core::Result::handled;
    }
    if (!verdict.allow) co_return co_await refuse_inbound(ev);
    co_return core::Result::pass;
  }

  // XEP-0016 §2.14 / XEP-0191 §3.3: what the user may not send gets <not-acceptable/>.
  awaitable<core::Result> outbound(core::StanzaEvent& ev) {
    if (!ev.origin) co_return core::Result::pass;
    const auto check = privacy::classify(xmpp::kind_of(ev.stanza), ev.stanza.attr_or("type"), false);
    const auto verdict = service_->check_session(*ev.origin, check, ev.to);
    if (verdict.allow) co_return core::Result::pass;
    if (auto reply = xmpp::error_reply(ev.stanza, StanzaError::not_acceptable)) {
      if (verdict.blocked) {
        if (auto* error = reply->child("error", reply->ns())) error->add("blocked", std::string(privacy::kBlockingErrorsNs));
      }
      core::Router::send_to(*ev.origin, *reply);
    }
    co_return core::Result::handled;
  }

  // --- pushes -----------------------------------------------------------------------------

  void push_to_all(const Jid& user, xml::Element iq) {
    for (auto& s : directory().resources(user)) {
      iq.set_attr("id", "push-" + sasl::random_id(8));
      iq.set_attr("to", s->jid().str());
      core::Router::send_to(*s, iq);
    }
  }

  // Privacy list pushes for every list whose definition changed (XEP-0016 §2.2), and
  // blocking pushes for every JID that entered or left the blocklist (XEP-0191 §3.3),
  // whichever protocol made the change: both are views of the same lists.
  void announce(const Jid& user, const PrivacyLists& before, const PrivacyLists& after, bool unblock_all) {
    std::set<std::string> names;
    for (const auto& l : before.lists) names.insert(l.name);
    for (const auto& l : after.lists) names.insert(l.name);
    for (const auto& name : names) {
      const auto* a = privacy::find_list(before, name);
      const auto* b = privacy::find_list(after, name);
      if (a && b && *a == *b) continue;
      xml::Element iq("iq", "jabber:client");
      iq.set_attr("type", "set");
      iq.add("query", std::string(privacy::kPrivacyNs)).add("list").set_attr("name", name);
      push_to_all(user, std::move(iq));
    }
    const auto was = privacy::blocklist(before);
    const auto is = privacy::blocklist(after);
    auto missing = [](const std::vector<std::string>& from, const std::vector<std::string>& in) {
      std::vector<std::string> out;
      for (const auto& j : from)
        if (std::find(in.begin(), in.end(), j) == in.end()) out.push_back(j);
      return out;
    };
    auto send = [&](const char* command, const std::vector<std::string>& jids, bool none) {
      xml::Element iq("iq", "jabber:client");
      iq.set_attr("type", "set");
      auto& el = iq.add(command, std::string(privacy::kBlockingNs));
      if (!none)
        for (const auto& j : jids) el.add("item").set_attr("jid", j);
      push_to_all(user, std::move(iq));
    };
    if (auto added = missing(is, was); !added.empty()) send("block", added, false);
    if (auto removed = missing(was, is); !removed.empty()) send("unblock", removed, unblock_all && is.empty());
  }

  // Runs a change through the store; the updater may refuse with a Refusal. Replies to
  // the IQ (result or error) and sends the pushes.
  awaitable<core::Result> change(core::StanzaEvent& ev, std::function<std::optional<PrivacyLists>(const PrivacyLists&)> update,
                                 bool unblock_all = false) {
    const Jid user = ev.to.bare();
    std::optional<Refusal> refusal;
    std::optional<std::pair<PrivacyLists, PrivacyLists>> result;
    bool failed = false;
    try {
      result = co_await service_->modify(user, [&](const PrivacyLists& current) -> std::optional<PrivacyLists> {
        try {
          return update(current);
        } catch (Refusal& r) {
          refusal = std::move(r);
          return std::nullopt;
        }
      });
    } catch (const std::exception& e) {
      spdlog::error("privacy lists of {}: {}", user.bare_str(), e.what());
      failed = true;
    }
    if (failed || !result) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    if (refusal) co_return co_await reply_error(ev, refusal->error, refusal->text);
    co_await reply(ev, xmpp::iq_result(ev.stanza));
    announce(user, result->first, result->second, unblock_all);
    co_return core::Result::handled;
  }

  void check_limits(const PrivacyLists& lists) const {
    if (lists.lists.size() > max_lists_)
      throw Refusal{StanzaError::policy_violation, "too many privacy lists (limit " + std::to_string(max_lists_) + ")"};
    for (const auto& l : lists.lists)
      if (l.items.size() > max_items_)
        throw Refusal{StanzaError::policy_violation, "too many items in one list (limit " + std::to_string(max_items_) + ")"};
  }

  // The user's lists, or nullptr (logged) when storage cannot be read.
  awaitable<PrivacyService::Snapshot> lists_or_null(const Jid& user) {
    try {
      co_return co_await service_->lists(user);
    } catch (const std::exception& e) {
      spdlog::error("privacy lists of {}: {}", user.bare_str(), e.what());
    }
    co_return nullptr;
  }

  // Only the user's own sessions manage the user's rules.
  static bool own(const core::StanzaEvent& ev) { return ev.origin && ev.from.bare() == ev.to; }

  // --- XEP-0016 ---------------------------------------------------------------------------

  awaitable<core::Result> privacy_get(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::service_unavailable);
    const auto* query = ev.stanza.first_element();
    const auto children = query->elements();
    if (children.size() > 1) co_return co_await reply_error(ev, StanzaError::bad_request, "ask for one list at a time");
    auto user = co_await lists_or_null(ev.to);
    if (!user) co_return co_await reply_error(ev, StanzaError::internal_server_error);

    auto result = xmpp::iq_result(ev.stanza);
    auto& out = result.add("query", std::string(privacy::kPrivacyNs));
    if (children.empty()) {
      if (auto active = service_->active_name(*ev.origin); !active.empty()) out.add("active").set_attr("name", active);
      if (!user->lists.default_name.empty()) out.add("default").set_attr("name", user->lists.default_name);
      for (const auto& l : user->lists.lists) out.add("list").set_attr("name", l.name);
      co_return co_await reply(ev, std::move(result));
    }
    const auto* want = children.front();
    if (want->name() != "list" || !want->attr("name")) co_return co_await reply_error(ev, StanzaError::bad_request);
    const auto* list = privacy::find_list(user->lists, *want->attr("name"));
    if (!list) co_return co_await reply_error(ev, StanzaError::item_not_found);
    privacy::write_list(out, *list);
    co_return co_await reply(ev, std::move(result));
  }

  // True if a session other than the sender's would lose the list it applies:
  // `name` is its active list, or the default when it has no active list (XEP-0016 §2.2).
  bool in_use_elsewhere(const core::Session& self, const std::string& name, const std::string& default_name) {
    for (const auto& active : service_->others_active(self)) {
      if (!active.empty() && active == name) return true;
      if (active.empty() && !default_name.empty() && name == default_name) return true;
    }
    return false;
  }

  // True if another session has no active list, so the current default applies to it.
  bool default_in_use_elsewhere(const core::Session& self, const std::string& default_name) {
    if (default_name.empty()) return false;
    const auto others = service_->others_active(self);
    return std::any_of(others.begin(), others.end(), [](const std::string& active) { return active.empty(); });
  }

  awaitable<core::Result> privacy_set(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::service_unavailable);
    const auto children = ev.stanza.first_element()->elements();
    if (children.size() != 1)
      co_return co_await reply_error(ev, StanzaError::bad_request, "a privacy set holds exactly one active, default or list");
    const auto& el = *children.front();
    if (el.ns() != privacy::kPrivacyNs) co_return co_await reply_error(ev, StanzaError::bad_request);
    auto& session = *ev.origin;
    const auto* name_attr = el.attr("name");
    const std::string name = name_attr ? *name_attr : std::string();

    if (el.name() == "active") {
      if (!name.empty()) {
        auto user = co_await lists_or_null(ev.to);
        if (!user) co_return co_await reply_error(ev, StanzaError::internal_server_error);
        if (!privacy::find_list(user->lists, name)) co_return co_await reply_error(ev, StanzaError::item_not_found);
      }
      co_await service_->set_active(session, name);  // applied before the result (§2.3)
      co_return co_await reply(ev, xmpp::iq_result(ev.stanza));
    }

    if (el.name() == "default") {
      co_return co_await change(ev, [&](const PrivacyLists& current) -> std::optional<PrivacyLists> {
        if (current.default_name == name) return std::nullopt;
        if (!name.empty() && !privacy::find_list(current, name)) throw Refusal{StanzaError::item_not_found, {}};
        if (default_in_use_elsewhere(session, current.default_name))
          throw Refusal{StanzaError::conflict, "the default list applies to another of your sessions"};
        PrivacyLists next = current;
        next.default_name = name;
        return next;
      });
    }

    if (el.name() != "list") co_return co_await reply_error(ev, StanzaError::bad_request);
    if (name.empty()) co_return co_await reply_error(ev, StanzaError::bad_request, "a list needs a name");

    if (el.elements().empty()) {  // removal (§2.6)
      co_return co_await change(ev, [&](const PrivacyLists& current) -> std::optional<PrivacyLists> {
        if (!privacy::find_list(current, name)) throw Refusal{StanzaError::item_not_found, {}};
        if (in_use_elsewhere(session, name, current.default_name))
          throw Refusal{StanzaError::conflict, "the list applies to another of your sessions"};
        PrivacyLists next = current;
        std::erase_if(next.lists, [&](const storage::PrivacyList& l) { return l.name == name; });
        if (next.default_name == name) next.default_name.clear();
        return next;
      });
    }

    StanzaError error{};
    std::string text;
    auto parsed = privacy::parse_list(el, error, text);
    if (!parsed) co_return co_await reply_error(ev, error, text);
    // Group items name groups of the user's roster (§2.1 SHOULD).
    std::set<std::string> groups;
    bool failed = false;
    try {
      auto roster = co_await roster_->get(ev.to);
      for (const auto& item : roster->items) groups.insert(item.state.groups.begin(), item.state.groups.end());
    } catch (const std::exception&) {
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    for (const auto& item : parsed->items)
      if (item.type == storage::PrivacyItem::Type::group && !groups.contains(item.value))
        co_return co_await reply_error(ev, StanzaError::item_not_found, "no roster group named " + item.value);

    co_return co_await change(ev, [&](const PrivacyLists& current) -> std::optional<PrivacyLists> {
      PrivacyLists next = current;
      auto pos = std::lower_bound(next.lists.begin(), next.lists.end(), parsed->name,
                                  [](const storage::PrivacyList& l, const std::string& n) { return l.name < n; });
      if (pos != next.lists.end() && pos->name == parsed->name) {
        *pos = *parsed;
      } else {
        next.lists.insert(pos, *parsed);
      }
      check_limits(next);
      return next;
    });
  }

  // --- XEP-0191 ---------------------------------------------------------------------------

  awaitable<core::Result> blocklist_get(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::service_unavailable);
    auto user = co_await lists_or_null(ev.to);
    if (!user) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    auto result = xmpp::iq_result(ev.stanza);
    auto& list = result.add("blocklist", std::string(privacy::kBlockingNs));
    for (const auto& jid : privacy::blocklist(user->lists)) list.add("item").set_attr("jid", jid);
    co_return co_await reply(ev, std::move(result));
  }

  awaitable<core::Result> block(core::StanzaEvent& ev, bool blocking) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::service_unavailable);
    std::vector<std::string> jids;
    for (const auto* item : ev.stanza.first_element()->elements()) {
      if (item->name() != "item" || item->ns() != privacy::kBlockingNs) co_return co_await reply_error(ev, StanzaError::bad_request);
      auto jid = Jid::parse(item->attr_or("jid"));
      if (!jid) co_return co_await reply_error(ev, StanzaError::jid_malformed, "not a JID: " + std::string(item->attr_or("jid")));
      jids.push_back(jid->str());
    }
    if (blocking && jids.empty()) co_return co_await reply_error(ev, StanzaError::bad_request, "block at least one JID");
    const bool all = !blocking && jids.empty();
    co_return co_await change(
        ev,
        [&](const PrivacyLists& current) -> std::optional<PrivacyLists> {
          auto next = blocking ? privacy::block(current, jids) : privacy::unblock(current, jids);
          check_limits(next);
          return next;
        },
        all);
  }

  // --- XEP-0186 ---------------------------------------------------------------------------

  awaitable<core::Result> visibility(core::StanzaEvent& ev, bool invisible) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::service_unavailable);
    const auto probe = ev.stanza.first_element()->attr_or("probe");
    co_await service_->set_invisible(*ev.origin, invisible, probe == "true" || probe == "1");
    co_return co_await reply(ev, xmpp::iq_result(ev.stanza));
  }

  core::Host* host_ = nullptr;
  PrivacyService* service_ = nullptr;
  RosterService* roster_ = nullptr;
  std::size_t max_lists_ = 50;
  std::size_t max_items_ = 5000;
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("privacy", "XEP-0016: Privacy Lists; XEP-0191: Blocking Command; XEP-0186: Invisible Command",
              herald::modules::Privacy)
