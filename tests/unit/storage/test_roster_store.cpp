// RosterStore on PostgreSQL (storage/pg/roster_store.cpp, migration 0002_roster). Needs
// HERALD_TEST_PG like test_pg.cpp; skipped without it.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pg_fixture.hpp"
#include "server/net/asio.hpp"
#include "storage/pg/account_store.hpp"
#include "storage/pg/pool.hpp"
#include "storage/pg/roster_store.hpp"
#include "storage/pg/schema.hpp"
#include "storage/schema.hpp"
#include "storage/stores.hpp"

using namespace herald::storage;
using namespace herald::storage::test;
using namespace std::chrono_literals;

// GCC 12 false positive on Asio's recycling frame allocator with large coroutine frames
// (see test_pg.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

// Helpers build values outside co_await expressions: GCC 12 rejects braced lists of
// class type inside them.
using Update = std::function<std::optional<ContactState>(const ContactState&)>;
using Requests = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

const std::string D = "example.com";

Strings split(std::string_view csv) {
  Strings out;
  while (!csv.empty()) {
    auto comma = csv.find(',');
    out.emplace_back(csv.substr(0, comma));
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return out;
}

ContactState item(std::string name, std::string_view groups,
                  Subscription subscription = Subscription::none) {
  ContactState s;
  s.in_roster = true;
  s.name = std::move(name);
  s.groups = split(groups);
  s.subscription = subscription;
  return s;
}

Update set_to(ContactState state) {
  return [state](const ContactState&) -> std::optional<ContactState> { return state; };
}

Update modify(std::function<void(ContactState&)> change) {
  return [change](const ContactState& current) -> std::optional<ContactState> {
    ContactState next = current;
    change(next);
    return next;
  };
}

Update keep() {
  return [](const ContactState&) -> std::optional<ContactState> { return std::nullopt; };
}

Update remove_item() { return set_to(ContactState()); }

Strings contacts(const Roster& roster) {
  Strings out;
  for (const auto& i : roster.items) out.push_back(i.contact);
  return out;
}

struct Env : StoreEnv {
  using StoreEnv::StoreEnv;
  std::unique_ptr<RosterStore> roster = pg::make_roster_store(pool);

};

}  // namespace

TEST_CASE("roster: 0002 applies on top of 0001 and keeps the accounts") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  auto all = migrations();
  REQUIRE(all.size() >= 2);
  CHECK(label(all[1]) == "0002_roster");
  run(env.io, [&]() -> awaitable<void> {
    CHECK((co_await migrate(env.pool, all.first(1))).size() == 1);
    REQUIRE(co_await env.accounts->create(D, "old", herald::sasl::Credentials()));
    auto applied = co_await migrate(env.pool);
    REQUIRE(applied.size() == all.size() - 1);
    CHECK(label(applied[0]) == "0002_roster");
    CHECK(co_await check_schema(env.pool, "x"));
    CHECK(co_await env.accounts->exists(D, "old"));
    Roster roster = co_await env.roster->load(D, "old");
    CHECK(roster.version == 0);
    CHECK(roster.items.empty());
    auto change = co_await env.roster->update(D, "old", "bob@example.net",
                                              set_to(item("Bob", "")));
    REQUIRE(change);
    CHECK(change->version == 1);
  });
}

TEST_CASE("roster: items are created, changed and removed; only visible changes bump") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  const ContactState bob = item("Bob", "Work,Friends");
  const ContactState carol = item("", "Work,Family,Work", Subscription::to);
  const ContactState robert = item("Robert", "Zoo,Work", Subscription::both);
  const Strings sorted_bob = split("Friends,Work"), sorted_carol = split("Family,Work");
  const Strings order = split("Dave@example.net,bob@example.net,carol@example.net");
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice"));
    auto& store = *env.roster;

    Roster empty = co_await store.load(D, "alice");
    CHECK(empty.version == 0);
    CHECK(empty.items.empty());
    CHECK_FALSE((co_await store.get(D, "alice", "bob@example.net")).has_value());

    // Create.
    auto created = co_await store.update(D, "alice", "bob@example.net", set_to(bob));
    REQUIRE(created);
    CHECK(created->contact == "bob@example.net");
    CHECK_FALSE(created->before.has_value());
    REQUIRE(created->after.has_value());
    CHECK(created->after->name == "Bob");
    CHECK(created->after->groups == sorted_bob);  // stored sorted
    CHECK(created->after->in_roster);
    CHECK(created->version == 1);
    CHECK(visible_change(created->before, created->after));

    auto second = co_await store.update(D, "alice", "carol@example.net", set_to(carol));
    CHECK(second->after->groups == sorted_carol);  // deduplicated
    CHECK(second->after->name.empty());
    CHECK(second->version == 2);
    auto third = co_await store.update(D, "alice", "Dave@example.net", set_to(item("D", "")));
    CHECK(third->version == 3);

    Roster roster = co_await store.load(D, "alice");
    CHECK(roster.version == 3);
    CHECK(contacts(roster) == order);  // bytewise
    CHECK(roster.items[1].state.name == "Bob");
    CHECK(roster.items[1].state.groups == sorted_bob);
    CHECK(roster.items[2].state.subscription == Subscription::to);
    CHECK(roster.items[2].state.groups == sorted_carol);
    CHECK(roster.items[0].state.groups.empty());

    // Change name, groups and subscription.
    auto changed = co_await store.update(D, "alice", "bob@example.net", set_to(robert));
    REQUIRE(changed->before.has_value());
    CHECK(changed->before->name == "Bob");
    CHECK(changed->after->name == "Robert");
    CHECK(changed->after->groups == split("Work,Zoo"));
    CHECK(changed->version == 4);
    auto got = co_await store.get(D, "alice", "bob@example.net");
    REQUIRE(got);
    CHECK(*got == *changed->after);
    CHECK(co_await env.count("SELECT count(*) FROM roster_groups WHERE contact = "
                             "'bob@example.net'") == 2);

    // Invisible: an inbound request on an item. Stored, no bump.
    auto requested = co_await store.update(
        D, "alice", "bob@example.net", modify([](ContactState& s) { s.pending_in = true; }),
        "<presence type='subscribe'/>");
    CHECK(requested->version == 4);
    CHECK(requested->after->pending_in);
    CHECK_FALSE(visible_change(requested->before, requested->after));
    CHECK((co_await store.get(D, "alice", "bob@example.net"))->pending_in);

    // Visible: pre-approval (approved='true' in the item, RFC 6121 3.4).
    auto preapproved = co_await store.update(
        D, "alice", "bob@example.net", modify([](ContactState& s) { s.preapproved = true; }));
    CHECK(preapproved->version == 5);
    CHECK(preapproved->after->preapproved);
    CHECK(visible_change(preapproved->before, preapproved->after));
    CHECK((co_await store.get(D, "alice", "bob@example.net"))->preapproved);

    // Visible: ask.
    auto asked = co_await store.update(
        D, "alice", "carol@example.net", modify([](ContactState& s) { s.pending_out = true; }));
    CHECK(asked->version == 6);
    CHECK((co_await store.load(D, "alice")).items[2].state.pending_out);

    // No change: nullopt, or the same state again.
    auto kept = co_await store.update(D, "alice", "bob@example.net", keep());
    CHECK(kept->version == 6);
    CHECK(kept->before == kept->after);
    auto regroup = modify([](ContactState& s) { s.groups = split("Zoo,Work"); });
    auto same = co_await store.update(D, "alice", "bob@example.net", regroup);
    CHECK(same->version == 6);
    CHECK(same->before == same->after);
    CHECK((co_await store.load(D, "alice")).version == 6);

    // Remove: a tombstone stamped with the new version, without name or groups.
    auto removed = co_await store.update(D, "alice", "bob@example.net", remove_item());
    CHECK(removed->before.has_value());
    CHECK_FALSE(removed->after.has_value());
    CHECK(removed->version == 7);
    CHECK_FALSE((co_await store.get(D, "alice", "bob@example.net")).has_value());
    roster = co_await store.load(D, "alice");
    CHECK(roster.version == 7);
    CHECK(roster.items.size() == 2);
    auto tomb = co_await env.pool.query(
        "SELECT removed, version, name IS NULL FROM roster_items WHERE contact = "
        "'bob@example.net'");
    REQUIRE(tomb.rows() == 1);
    CHECK(tomb.text(0, 0) == "t");
    CHECK(tomb.integer(0, 1) == 7);
    CHECK(tomb.text(0, 2) == "t");
    CHECK(co_await env.count("SELECT count(*) FROM roster_groups WHERE contact = "
                             "'bob@example.net'") == 0);
    // Removing again changes nothing.
    auto again = co_await store.update(D, "alice", "bob@example.net", remove_item());
    CHECK(again->version == 7);
    CHECK_FALSE(again->before.has_value());

    // State outside the roster (from without an item) is kept but invisible: no bump.
    ContactState from_only;
    from_only.subscription = Subscription::from;
    auto hidden = co_await store.update(D, "alice", "eve@example.net", set_to(from_only));
    CHECK(hidden->version == 7);
    CHECK(hidden->after->subscription == Subscription::from);
    CHECK_FALSE(hidden->after->in_roster);
    CHECK((co_await store.get(D, "alice", "eve@example.net"))->subscription ==
          Subscription::from);
    CHECK((co_await store.load(D, "alice")).items.size() == 2);

    // Re-adding the removed contact reuses its tombstone.
    auto back = co_await store.update(D, "alice", "bob@example.net", set_to(item("B", "G")));
    CHECK(back->version == 8);
    CHECK(back->after->groups == split("G"));
    CHECK_FALSE(back->after->preapproved);
    CHECK(contacts(co_await store.load(D, "alice")).size() == 3);

    // Groups with characters that need quoting in an array literal.
    const Strings odd = split("a\"b,back\\slash,{braces},NULL,sp ace,é");
    ContactState dave = item("D", "");
    dave.groups = odd;
    auto quoted = co_await store.update(D, "alice", "Dave@example.net", set_to(dave));
    Strings odd_sorted = odd;
    std::sort(odd_sorted.begin(), odd_sorted.end());
    CHECK(quoted->after->groups == odd_sorted);
    CHECK((co_await store.get(D, "alice", "Dave@example.net"))->groups == odd_sorted);
    CHECK((co_await store.load(D, "alice")).items[0].state.groups == odd_sorted);
  });
}

TEST_CASE("roster: changes_since returns exactly what changed, nullopt for unknown versions") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice,bob"));
    auto& store = *env.roster;
    auto changes = [&](std::int64_t since) { return store.changes_since(D, "alice", since); };
    auto summary = [](const std::vector<RosterChange>& list) {
      std::string out;
      for (const auto& c : list) {
        out += c.contact + "@" + std::to_string(c.version) + (c.after ? "+" : "-") + " ";
        CHECK_FALSE(c.before.has_value());
      }
      return out;
    };

    auto none = co_await changes(0);
    REQUIRE(none);
    CHECK(none->empty());
    CHECK_FALSE((co_await changes(1)).has_value());

    co_await store.update(D, "alice", "a", set_to(item("A", "")));  // 1
    co_await store.update(D, "alice", "b", set_to(item("B", "")));  // 2
    co_await store.update(D, "alice", "c", set_to(item("C", "X")));  // 3
    co_await store.update(D, "alice", "a", set_to(item("A2", "")));  // 4
    co_await store.update(D, "alice", "b", remove_item());           // 5
    co_await store.update(D, "alice", "c", modify([](ContactState& s) { s.pending_in = true; }),
                          "<presence/>");  // invisible
    // Never visible: a pending-in request alone, or a preapproval alone.
    co_await store.update(D, "alice", "spam", modify([](ContactState& s) { s.pending_in = true; }),
                          "<presence/>");
    co_await store.update(D, "alice", "pre", modify([](ContactState& s) { s.preapproved = true; }));
    // Another account's changes do not show up.
    co_await store.update(D, "bob", "z", set_to(item("Z", "")));
    CHECK((co_await store.load(D, "alice")).version == 5);

    auto current = co_await changes(5);
    REQUIRE(current);
    CHECK(current->empty());
    CHECK_FALSE((co_await changes(6)).has_value());
    CHECK_FALSE((co_await changes(-1)).has_value());
    CHECK_FALSE((co_await store.changes_since(D, "nobody", 0)).has_value());

    auto since3 = co_await changes(3);
    REQUIRE(since3);
    CHECK(summary(*since3) == "a@4+ b@5- ");
    REQUIRE(since3->front().after);
    CHECK(since3->front().after->name == "A2");
    CHECK(summary(*co_await changes(0)) == "c@3+ a@4+ b@5- ");
    CHECK(summary(*co_await changes(2)) == "c@3+ a@4+ b@5- ");
    CHECK(summary(*co_await changes(4)) == "b@5- ");
    auto since2 = co_await changes(2);
    REQUIRE(since2->front().after);
    CHECK(since2->front().after->groups == split("X"));
    CHECK(since2->front().after->pending_in);  // the state as it is now

    // Re-added, and an item leaving the roster while a subscription remains.
    co_await store.update(D, "alice", "b", set_to(item("B", "")));  // 6
    co_await store.update(D, "alice", "c",                          // 7
                          modify([](ContactState& s) {
                            s.in_roster = false;
                            s.subscription = Subscription::from;
                          }));
    CHECK(summary(*co_await changes(5)) == "b@6+ c@7- ");
    CHECK(summary(*co_await changes(0)) == "a@4+ b@6+ c@7- ");
  });
}

TEST_CASE("roster: pending in keeps the request stanza; pending_requests oldest first") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  const std::string zed = "<presence from='zed@example.net' type='subscribe'><status>hi ✓\n"
                          "\"quoted\" \\ back</status></presence>";
  const std::string amy = "<presence from='amy@example.net' type='subscribe'/>";
  const std::string mike = "<presence from='mike@example.net' type='subscribe'/>";
  const Requests three{{"zed@example.net", zed}, {"amy@example.net", amy},
                       {"mike@example.net", mike}};
  const Requests two{{"zed@example.net", zed}, {"mike@example.net", mike}};
  auto pending = [](bool on) { return modify([on](ContactState& s) { s.pending_in = on; }); };
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice"));
    auto& store = *env.roster;
    CHECK((co_await store.pending_requests(D, "alice")).empty());

    auto first = co_await store.update(D, "alice", "zed@example.net", pending(true), zed);
    REQUIRE(first);
    CHECK_FALSE(first->before.has_value());
    REQUIRE(first->after.has_value());
    CHECK(first->after->pending_in);
    CHECK_FALSE(first->after->in_roster);
    CHECK(first->version == 0);  // invisible
    co_await store.update(D, "alice", "amy@example.net", pending(true), amy);
    co_await store.update(D, "alice", "mike@example.net", pending(true), mike);
    // A repeated request keeps the first stanza.
    auto repeat = co_await store.update(D, "alice", "zed@example.net", pending(true), "<other/>");
    CHECK(repeat->before == repeat->after);
    CHECK(co_await store.pending_requests(D, "alice") == three);
    CHECK((co_await store.get(D, "alice", "amy@example.net"))->pending_in);
    // No roster item rows for requests alone.
    CHECK(co_await env.count("SELECT count(*) FROM roster_items") == 0);

    // Answered (declined): gone, state None again.
    auto declined = co_await store.update(D, "alice", "amy@example.net", pending(false));
    CHECK(declined->before.has_value());
    CHECK_FALSE(declined->after.has_value());
    CHECK_FALSE((co_await store.get(D, "alice", "amy@example.net")).has_value());
    CHECK(co_await store.pending_requests(D, "alice") == two);

    // Approved: pending_in cleared in the same update that adds the item and 'from'.
    auto approved = co_await store.update(D, "alice", "mike@example.net",
                                          modify([](ContactState& s) {
                                            s.pending_in = false;
                                            s.subscription = Subscription::from;
                                            s.in_roster = true;
                                          }));
    CHECK(approved->version == 1);
    CHECK_FALSE(approved->after->pending_in);
    CHECK((co_await store.pending_requests(D, "alice")).size() == 1);

    // pending_in shows on roster items too.
    co_await store.update(D, "alice", "zed@example.net",
                          modify([](ContactState& s) { s.in_roster = true; }));
    Roster roster = co_await store.load(D, "alice");
    REQUIRE(roster.items.size() == 2);
    CHECK_FALSE(roster.items[0].state.pending_in);  // mike
    CHECK(roster.items[1].state.pending_in);        // zed
  });
}

TEST_CASE("roster: concurrent updates to one user from two connections serialize") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  pg::Pool other(env.io, env.schema.options(1));
  auto other_store = pg::make_roster_store(other);
  constexpr int kUpdates = 20;
  std::vector<std::int64_t> versions;
  int finished = 0;
  std::string failure;
  run(env.io, [&]() -> awaitable<void> { co_await env.setup(split("alice")); });
  auto increment = [](ContactState& s) {
    s.in_roster = true;
    s.name = std::to_string(s.name.empty() ? 1 : std::stoi(s.name) + 1);
  };
  for (int i = 0; i < kUpdates; ++i) {
    RosterStore* store = i % 2 ? other_store.get() : env.roster.get();
    asio::co_spawn(
        env.io,
        [&, i, store]() -> awaitable<void> {
          try {
            // Every other one on a second contact too, so the lock is per user, not per item.
            auto change = co_await store->update(D, "alice", "counter@example.net",
                                                modify(increment));
            versions.push_back(change->version);
            if (i % 3 == 0) {
              co_await store->update(D, "alice", "other@example.net", modify(increment));
            }
          } catch (const std::exception& e) {
            failure = e.what();
          }
          ++finished;
        },
        asio::detached);
  }
  env.io.restart();
  env.io.run();
  CHECK(failure == "");
  CHECK(finished == kUpdates);
  run(env.io, [&]() -> awaitable<void> {
    auto counter = co_await env.roster->get(D, "alice", "counter@example.net");
    REQUIRE(counter);
    CHECK(counter->name == std::to_string(kUpdates));
    auto other_item = co_await env.roster->get(D, "alice", "other@example.net");
    CHECK(other_item->name == "7");
    CHECK((co_await env.roster->load(D, "alice")).version == kUpdates + 7);
  });
  std::sort(versions.begin(), versions.end());
  CHECK(std::adjacent_find(versions.begin(), versions.end()) == versions.end());  // distinct
}

TEST_CASE("roster: a missing account") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  bool called = false;
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice"));
    auto& store = *env.roster;
    auto change = co_await store.update(D, "nobody", "bob@example.net",
                                        [&](const ContactState&) -> std::optional<ContactState> {
                                          called = true;
                                          return item("B", "");
                                        });
    CHECK_FALSE(change.has_value());
    CHECK_FALSE(called);
    Roster roster = co_await store.load(D, "nobody");
    CHECK(roster.version == 0);
    CHECK(roster.items.empty());
    CHECK_FALSE((co_await store.get(D, "nobody", "bob@example.net")).has_value());
    CHECK((co_await store.pending_requests(D, "nobody")).empty());
    CHECK((co_await store.subscribers(D, "nobody")).empty());
    co_await store.set_last_presence(D, "nobody", "<presence type='unavailable'/>", "");
    CHECK_FALSE((co_await store.last_presence(D, "nobody")).has_value());
    CHECK(co_await env.count("SELECT count(*) FROM roster_items") == 0);
  });
}

TEST_CASE("roster: a failing update writes nothing") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice"));
    auto& store = *env.roster;
    co_await store.update(D, "alice", "bob@example.net", set_to(item("Bob", "G")));
    bool threw = false;
    try {
      co_await store.update(D, "alice", "bob@example.net",
                            [](const ContactState&) -> std::optional<ContactState> {
                              throw std::runtime_error("module bug");
                            });
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "module bug";
    }
    CHECK(threw);
    // A NUL would be cut off by libpq: refused, rolled back.
    threw = false;
    try {
      co_await store.update(D, "alice", "bob@example.net",
                            set_to(item(std::string("a\0b", 3), "")));
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(threw);
    Roster roster = co_await store.load(D, "alice");
    CHECK(roster.version == 1);
    REQUIRE(roster.items.size() == 1);
    CHECK(roster.items[0].state.name == "Bob");
  });
}

TEST_CASE("roster: subscribers and subscriptions") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  auto with = [](Subscription s, bool in_roster) {
    return modify([s, in_roster](ContactState& c) {
      c.subscription = s;
      c.in_roster = in_roster;
    });
  };
  const Strings from = split("both@x,from@x,hidden-from@x");
  const Strings to = split("both@x,to@x");
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice,bob"));
    auto& store = *env.roster;
    co_await store.update(D, "alice", "none@x", with(Subscription::none, true));
    co_await store.update(D, "alice", "to@x", with(Subscription::to, true));
    co_await store.update(D, "alice", "from@x", with(Subscription::from, true));
    co_await store.update(D, "alice", "both@x", with(Subscription::both, true));
    co_await store.update(D, "alice", "hidden-from@x", with(Subscription::from, false));
    co_await store.update(D, "alice", "gone@x", with(Subscription::both, true));
    co_await store.update(D, "alice", "gone@x", remove_item());
    co_await store.update(D, "bob", "other@x", with(Subscription::both, true));
    CHECK(co_await store.subscribers(D, "alice") == from);
    CHECK(co_await store.subscriptions(D, "alice") == to);
  });
}

TEST_CASE("roster: last presence round trip") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  const std::string stanza =
      "<presence type='unavailable'><status>gone fishing 🎣 'x' \"y\"</status></presence>";
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice"));
    auto& store = *env.roster;
    CHECK_FALSE((co_await store.last_presence(D, "alice")).has_value());

    auto before = std::chrono::system_clock::now();
    co_await store.set_last_presence(D, "alice", stanza, "gone fishing 🎣");
    auto after = std::chrono::system_clock::now();
    auto last = co_await store.last_presence(D, "alice");
    REQUIRE(last);
    CHECK(last->stanza == stanza);
    CHECK(last->status == "gone fishing 🎣");
    CHECK(last->logout_at >= before - 1s);
    CHECK(last->logout_at <= after + 1s);

    co_await sleep_for(20ms);
    co_await store.set_last_presence(D, "alice", "<presence type='unavailable'/>", "");
    auto replaced = co_await store.last_presence(D, "alice");
    REQUIRE(replaced);
    CHECK(replaced->stanza == "<presence type='unavailable'/>");
    CHECK(replaced->status.empty());
    CHECK(replaced->logout_at > last->logout_at);
    CHECK(co_await env.count("SELECT count(*) FROM last_presence WHERE status IS NULL") == 1);
  });
}

TEST_CASE("roster: removing the account removes everything it owned") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(split("alice,bob"));
    auto& store = *env.roster;
    for (std::string user : split("alice,bob")) {
      co_await store.update(D, user, "c@x", set_to(item("C", "G1,G2")));
      co_await store.update(D, user, "d@x", set_to(item("D", "")));
      co_await store.update(D, user, "d@x", remove_item());
      co_await store.update(D, user, "r@x", modify([](ContactState& s) { s.pending_in = true; }),
                            "<presence type='subscribe'/>");
      co_await store.set_last_presence(D, user, "<presence type='unavailable'/>", "bye");
    }
    CHECK(co_await env.accounts->remove(D, "alice"));
    for (const char* table :
         {"roster_items", "roster_groups", "subscription_requests", "last_presence"}) {
      CAPTURE(table);
      CHECK(co_await env.count(std::string("SELECT count(*) FROM ") + table +
                               " WHERE username = 'alice'") == 0);
      CHECK(co_await env.count(std::string("SELECT count(*) FROM ") + table +
                               " WHERE username = 'bob'") > 0);
    }
    // Re-created, the account starts over.
    REQUIRE(co_await env.accounts->create(D, "alice", herald::sasl::Credentials()));
    Roster roster = co_await store.load(D, "alice");
    CHECK(roster.version == 0);
    CHECK(roster.items.empty());
    CHECK((co_await store.load(D, "bob")).version == 3);
  });
}
