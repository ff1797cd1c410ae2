// Message Archive Management (XEP-0313, urn:xmpp:mam:2) and unique stanza ids (XEP-0359):
//   - inbound/<bare|full> (priority 50, after the access rules at 100): a message to a
//     local account loses every <stanza-id/> claiming the account's JID; an archivable
//     one the user's preferences keep gets a fresh <stanza-id by=account/> in place (so
//     delivery, carbons and offline storage carry it) and is in the archive before the
//     router goes on: the sender's stream-management ack follows routing, so an
//     acknowledged message is a durable one;
//   - pre-message/<bare|full> (sender's host): the same for what a local client sends,
//     archived as the sender's copy;
//   - the account's archive: queries (form and RSM paging), preferences, metadata;
//   - retention: one task per process expires messages older than [archive] retention_days.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "server/core/host.hpp"
#include "server/core/session.hpp"
#include "server/core/worker.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/modules/mam/archive_service.hpp"
#include "server/modules/mam/mam_protocol.hpp"
#include "server/modules/privacy/privacy_service.hpp"
#include "server/modules/roster/roster_service.hpp"
#include "server/sasl/crypto.hpp"
#include "server/xml/parse.hpp"
#include "server/xml/serializer.hpp"

namespace herald::modules {
namespace {

using xmpp::Jid;
using xmpp::StanzaError;

// Expiry deletes across all owners of the database: one task per process, whichever host
// starts it.
std::atomic<bool> g_retention_started{false};

awaitable<void> retention_loop(core::Server& server, unsigned days) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    if (server.shutting_down()) co_return;
    const auto cutoff = std::chrono::system_clock::now() - std::chrono::hours(24) * days;
    try {
      const auto removed = co_await core::Worker::current()->archive().expire(cutoff);
      spdlog::info("archive retention: removed {} message(s) older than {} day(s)", removed, days);
    } catch (const std::exception& e) {
      spdlog::error("archive retention: {}", e.what());
    }
    timer.expires_after(std::chrono::hours(1));
    co_await timer.async_wait(use_awaitable);
  }
}

// How the archive write went.
enum class Stored { yes, skipped, failed };

class Mam final : public core::Module {
 public:
  void load(core::Host& host) override {
    host_ = &host;
    service_ = &host.service<ArchiveService>();
    auto& ev = host.events();
    // XEP-0359 §5: the account's JID is ours to assign ids by, archive or not, so claims
    // of it are removed in both directions even with archiving off.
    for (const char* name : {"inbound/bare", "inbound/full"})
      ev.on(name, 50, [this](core::StanzaEvent& e) { return inbound(e); });
    for (const char* name : {"pre-message/bare", "pre-message/full"})
      ev.on(name, 50, [this](core::StanzaEvent& e) { return outbound(e); });
    if (!service_->enabled()) return;

    roster_ = &host.service<RosterService>();
    privacy_ = &host.service<PrivacyService>();
    const auto& cfg = host.server().config();
    limits_.max_page = cfg.archive.max_page;
    limits_.default_page = std::min<std::size_t>(50, cfg.archive.max_page);
    // Half the send queue: a page of large messages must not overflow the queue of the
    // very session that asked for it (which would close it).
    page_bytes_ = cfg.limits.send_queue_bytes / 2;

    // The account's own JID hosts the archive and assigns the ids (XEP-0313 §6).
    host.add_account_feature(std::string(mam::kMamNs));
    host.add_account_feature(std::string(mam::kMamExtendedFeature));
    host.add_account_feature(std::string(mam::kSidNs));

    const std::string ns(mam::kMamNs);
    ev.on("iq-set/bare/" + ns + ":query", 0, [this](core::StanzaEvent& e) { return query(e); });
    ev.on("iq-get/bare/" + ns + ":query", 0, [this](core::StanzaEvent& e) { return form(e); });
    ev.on("iq-get/bare/" + ns + ":prefs", 0, [this](core::StanzaEvent& e) { return prefs_get(e); });
    ev.on("iq-set/bare/" + ns + ":prefs", 0, [this](core::StanzaEvent& e) { return prefs_set(e); });
    ev.on("iq-get/bare/" + ns + ":metadata", 0, [this](core::StanzaEvent& e) { return metadata(e); });

    // Once the workers run: one task per process, on worker 0.
    if (cfg.archive.retention_days > 0) host.server().on_started([this] { start_retention(); });
  }

 private:
  core::Server& server() { return host_->server(); }
  static storage::ArchiveStore& store() { return core::Worker::current()->archive(); }

  void start_retention() {
    if (g_retention_started.load() || g_retention_started.exchange(true)) return;
    auto& srv = server();
    const unsigned days = srv.config().archive.retention_days;
    spdlog::info("archive retention: messages older than {} day(s) are removed every hour", days);
    asio::co_spawn(srv.worker(0).io(), retention_loop(srv, days), asio::detached);
  }

  // The server itself (any of our domains) neither sends nor receives archived messages.
  bool is_our_server(const Jid& jid) { return jid.local().empty() && server().host(jid.domain()) != nullptr; }

  // --- archiving ------------------------------------------------------------------------

  // Whether `owner`'s preferences keep a message exchanged with `with`. Throws storage::Error.
  awaitable<bool> wanted(const Jid& owner, const Jid& with) {
    const auto prefs = co_await service_->prefs(owner);
    const auto with_bare = with.bare_str();
    bool in_roster = false;
    if (mam::needs_roster(prefs, with_bare)) {
      auto roster = co_await roster_->get(owner);
      in_roster = RosterService::find(*roster, with_bare) != nullptr;
    }
    co_return ArchiveService::should_archive(prefs, with_bare, in_roster);
  }

  // Archives `message` (already without claims of the owner's ids) for `owner` under a
  // new id (returned through `id`) if the preferences keep it. The archived copy carries
  // <stanza-id by=owner/>.
  awaitable<Stored> archive(const Jid& owner, const Jid& with, const xml::Element& message, std::string& id) {
    bool keep = false;
    bool failed = false;
    try {
      keep = co_await wanted(owner, with);
    } catch (const std::exception& e) {
      spdlog::error("archive preferences of {}: {}", owner.bare_str(), e.what());
      failed = true;
    }
    if (failed) co_return Stored::failed;
    if (!keep) co_return Stored::skipped;

    id = sasl::random_id(12);
    xml::Element copy = message;
    // Stanzas from other servers arrive in jabber:server; results forward jabber:client.
    if (copy.ns() == "jabber:server") copy.rename_namespace("jabber:server", "jabber:client");
    mam::add_stanza_id(copy, id, owner.bare_str());
    std::vector<storage::ArchiveEntry> entries(1);
    entries[0].domain = owner.domain();
    entries[0].username = owner.local();
    entries[0].id = id;
    entries[0].with = with.bare_str();
    entries[0].stanza = xml::serialize(copy);
    try {
      co_await store().append(std::move(entries));
    } catch (const std::exception& e) {
      spdlog::error("archive of {}: {}", owner.bare_str(), e.what());
      failed = true;
    }
    co_return failed ? Stored::failed : Stored::yes;
  }

  // A message addressed to an account: the recipient's copy.
  awaitable<core::Result> inbound(core::StanzaEvent& ev) {
    if (xmpp::kind_of(ev.stanza) != xmpp::Kind::message) co_return core::Result::pass;
    const Jid owner = ev.to.bare();
    mam::strip_stanza_ids(ev.stanza, owner);
    if (!service_->enabled() || !mam::archivable(ev.stanza) || is_our_server(ev.from)) co_return core::Result::pass;

    // What the recipient's rules refuse is not what the user received (XEP-0313 §7.1);
    // a message to an existing resource already passed that resource's rules.
    int problem = 0;  // 1: refused or no account, 2: storage failed
    try {
      const bool to_session = !ev.to.is_bare() && server().directory().find(ev.to) != nullptr;
      if (!to_session) {
        const auto verdict = co_await privacy_->check_account(owner, privacy::Check::message_in, ev.from);
        if (!verdict.allow) problem = 1;
      }
      // Nobody online: the account may not exist, and then the router bounces it.
      if (problem == 0 && server().directory().resources(owner).empty()) {
        const bool exists = co_await core::Worker::current()->accounts().exists(owner.domain(), owner.local());
        if (!exists) problem = 1;
      }
    } catch (const std::exception& e) {
      spdlog::error("archive checks for {}: {}", owner.bare_str(), e.what());
      problem = 2;
    }
    if (problem == 1) co_return core::Result::pass;

    std::string id;
    Stored stored = Stored::failed;
    if (problem == 0) stored = co_await archive(owner, ev.from, ev.stanza, id);
    if (stored == Stored::failed) {
      // Never a silent loss: the sender learns it was not delivered.
      co_return co_await reply_error(ev, StanzaError::internal_server_error, "archive unavailable");
    }
    if (stored == Stored::yes) mam::add_stanza_id(ev.stanza, std::move(id), owner.bare_str());
    co_return core::Result::pass;
  }

  // A message a local client sends: the sender's copy. It carries no stanza-id out:
  // the recipient may not read the sender's archive (XEP-0313 §3.5).
  awaitable<core::Result> outbound(core::StanzaEvent& ev) {
    if (!ev.origin) co_return core::Result::pass;
    const Jid owner = ev.from.bare();
    mam::strip_stanza_ids(ev.stanza, owner);
    // Claims of a local recipient's JID are forged too: gone before the sender's copy is
    // archived (inbound would remove them from the delivered copy anyway).
    if (!ev.to.local().empty() && server().host(ev.to.domain())) mam::strip_stanza_ids(ev.stanza, ev.to.bare());
    if (!service_->enabled() || !mam::archivable(ev.stanza) || is_our_server(ev.to)) co_return core::Result::pass;
    // A note to self is archived once, as received (with the stanza-id the user sees).
    if (ev.to.bare() == owner) co_return core::Result::pass;
    std::string id;
    const auto stored = co_await archive(owner, ev.to, ev.stanza, id);
    if (stored == Stored::failed)
      co_return co_await reply_error(ev, StanzaError::internal_server_error, "archive unavailable");
    co_return core::Result::pass;
  }

  // --- the archive ----------------------------------------------------------------------

  // XEP-0313 §8.1: only the account itself reads or configures its archive.
  static bool own(const core::StanzaEvent& ev) { return ev.origin && ev.from.bare() == ev.to; }

  awaitable<core::Result> form(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    auto result = xmpp::iq_result(ev.stanza);
    result.append(mam::query_form());
    co_return co_await reply(ev, std::move(result));
  }

  awaitable<core::Result> query(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    auto request = mam::parse_query(*ev.stanza.first_element(), limits_);
    if (request.error) co_return co_await reply_error(ev, request.error->error, request.error->text);
    const Jid owner = ev.to;

    storage::ArchivePage page;
    int failure = 0;  // 1: an id is not in the archive, 2: storage failed
    try {
      page = co_await store().query(owner.domain(), owner.local(), request.query);
    } catch (const storage::Error& e) {
      failure = std::string_view(e.what()) == "item-not-found" ? 1 : 2;
      if (failure == 2) spdlog::error("archive query of {}: {}", owner.bare_str(), e.what());
    } catch (const std::exception& e) {
      spdlog::error("archive query of {}: {}", owner.bare_str(), e.what());
      failure = 2;
    }
    // XEP-0313 §4.1.3: every id in 'ids' must exist. Fewer matches than ids may just be
    // the other filters; a count of the ids alone tells.
    if (failure == 0 && !request.query.ids.empty() && page.count < request.query.ids.size()) {
      storage::ArchiveQuery only_ids;
      only_ids.ids = request.query.ids;
      only_ids.max = 0;
      try {
        const auto known = co_await store().query(owner.domain(), owner.local(), only_ids);
        if (known.count < only_ids.ids.size()) failure = 1;
      } catch (const std::exception& e) {
        spdlog::error("archive query of {}: {}", owner.bare_str(), e.what());
        failure = 2;
      }
    }
    if (failure == 1) co_return co_await reply_error(ev, StanzaError::item_not_found, "no such message in the archive");
    if (failure == 2) co_return co_await reply_error(ev, StanzaError::internal_server_error, "archive unavailable");

    // Within the byte budget: the page's start going forward, its end going backward,
    // so that paging on from <first/> or <last/> skips nothing.
    const auto& messages = page.messages;
    const auto window = mam::page_window(messages, request.query.from_end, page_bytes_);
    const std::size_t begin = window.first, end = window.second;
    const bool truncated = begin > 0 || end < messages.size();

    const auto to = ev.from.str();
    const auto from = owner.bare_str();
    for (std::size_t n = 0; n < end - begin; ++n) {
      const auto& m = messages[request.flip_page ? end - 1 - n : begin + n];
      auto original = xml::parse_element(m.stanza);
      if (!original) {
        spdlog::warn("archive of {}: message {} is not well-formed XML, not sent", from, m.id);
        continue;
      }
      core::Router::send_to(*ev.origin, mam::result_message(to, from, request.queryid, m, std::move(*original)));
    }

    mam::PageSummary summary;
    summary.count = page.count;
    summary.complete = page.complete && !truncated;
    if (begin < end) {
      summary.first = messages[begin].id;
      summary.last = messages[end - 1].id;
      if (page.first_index) summary.first_index = *page.first_index + begin;
    }
    auto result = xmpp::iq_result(ev.stanza);
    result.append(mam::fin(summary));
    co_return co_await reply(ev, std::move(result));
  }

  awaitable<core::Result> prefs_get(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    storage::ArchivePrefs prefs;
    bool failed = false;
    try {
      prefs = co_await service_->prefs(ev.to);
    } catch (const std::exception& e) {
      spdlog::error("archive preferences of {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    auto result = xmpp::iq_result(ev.stanza);
    result.append(mam::prefs_element(prefs));
    co_return co_await reply(ev, std::move(result));
  }

  awaitable<core::Result> prefs_set(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    auto request = mam::parse_prefs(*ev.stanza.first_element());
    if (request.error) co_return co_await reply_error(ev, request.error->error, request.error->text);
    bool stored = false;
    bool failed = false;
    try {
      stored = co_await service_->set_prefs(ev.to, request.prefs);
    } catch (const std::exception& e) {
      spdlog::error("archive preferences of {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed || !stored) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    // The result holds the preferences now in force (XEP-0441 §4).
    auto result = xmpp::iq_result(ev.stanza);
    result.append(mam::prefs_element(request.prefs));
    co_return co_await reply(ev, std::move(result));
  }

  awaitable<core::Result> metadata(core::StanzaEvent& ev) {
    if (!own(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    mam::ArchiveBounds bounds;
    bool failed = false;
    try {
      bounds = co_await store().bounds(ev.to.domain(), ev.to.local());
    } catch (const std::exception& e) {
      spdlog::error("archive metadata of {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error, "archive unavailable");
    auto result = xmpp::iq_result(ev.stanza);
    result.append(mam::metadata_element(bounds));
    co_return co_await reply(ev, std::move(result));
  }

  core::Host* host_ = nullptr;
  ArchiveService* service_ = nullptr;
  RosterService* roster_ = nullptr;
  PrivacyService* privacy_ = nullptr;
  mam::PageLimits limits_;
  std::size_t page_bytes_ = 2 * 1024 * 1024;
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("mam", "XEP-0313: Message Archive Management; XEP-0359: Unique and Stable Stanza IDs",
              herald::modules::Mam)
