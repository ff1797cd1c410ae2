// PrivacyStore on PostgreSQL (storage/pg/privacy_store.cpp, migration 0003_privacy). Needs
// HERALD_TEST_PG like test_pg.cpp; skipped without it.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pg_fixture.hpp"
#include "server/net/asio.hpp"
#include "storage/pg/account_store.hpp"
#include "storage/pg/pool.hpp"
#include "storage/pg/privacy_store.hpp"
#include "storage/pg/schema.hpp"
#include "storage/schema.hpp"
#include "storage/stores.hpp"

using namespace herald::storage;
using namespace herald::storage::test;

// GCC 12 false positive on Asio's recycling frame allocator with large coroutine frames
// (see test_pg.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

// Helpers build values outside co_await expressions: GCC 12 rejects braced lists of
// class type inside them.
using Update = std::function<std::optional<PrivacyLists>(const PrivacyLists&)>;
using Type = PrivacyItem::Type;
using Strings = std::vector<std::string>;

const std::string D = "example.com";

template <class... Names>
Strings users(Names... user) {
  return Strings{user...};
}

PrivacyItem item(Type type, std::string value, bool allow, std::uint32_t order,
                 std::uint8_t kinds = 0) {
  PrivacyItem i;
  i.type = type;
  i.value = std::move(value);
  i.allow = allow;
  i.order = order;
  i.kinds = kinds;
  return i;
}

PrivacyItem blocked(std::string jid, std::uint32_t order) {
  return item(Type::jid, std::move(jid), false, order);
}

PrivacyList list(std::string name, std::vector<PrivacyItem> items) {
  PrivacyList l;
  l.name = std::move(name);
  l.items = std::move(items);
  return l;
}

Update set_to(PrivacyLists lists) {
  return [lists](const PrivacyLists&) -> std::optional<PrivacyLists> { return lists; };
}

Update change(std::function<void(PrivacyLists&)> edit) {
  return [edit](const PrivacyLists& current) -> std::optional<PrivacyLists> {
    PrivacyLists next = current;
    edit(next);
    return next;
  };
}

Update keep() {
  return [](const PrivacyLists&) -> std::optional<PrivacyLists> { return std::nullopt; };
}

PrivacyList* find(PrivacyLists& lists, std::string_view name) {
  for (auto& l : lists.lists) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

// Appends to the list "counter" (order = its items so far); every third call also
// creates a list of its own and makes it the default.
Update append(int i) {
  return change([i](PrivacyLists& l) {
    PrivacyList* counter = find(l, "counter");
    if (!counter) {
      l.lists.push_back(list("counter", {}));
      counter = &l.lists.back();
    }
    auto n = static_cast<std::uint32_t>(counter->items.size());
    counter->items.push_back(blocked(std::to_string(i), n));
    if (i % 3 == 0) {
      l.lists.push_back(list("own" + std::to_string(i), {}));
      l.default_name = l.lists.back().name;
    }
  });
}

Strings names(const PrivacyLists& lists) {
  Strings out;
  for (const auto& l : lists.lists) out.push_back(l.name);
  return out;
}

// Every kind of item XEP-0016 allows, out of order: the store returns them by order.
PrivacyList everything() {
  return list("everything",
              {item(Type::any, "", true, 4294967295u),
               item(Type::jid, "juliet@example.com/balcony", false, 0, privacy_kind::message),
               item(Type::group, "Enemies \"and\" {others}, \\ é", false, 7,
                    privacy_kind::iq | privacy_kind::presence_in),
               item(Type::subscription, "none", true, 3, privacy_kind::presence_out),
               item(Type::subscription, "both", false, 4, privacy_kind::all),
               item(Type::jid, "example.net", true, 1, privacy_kind::presence_in),
               item(Type::jid, "", false, 2, privacy_kind::iq)});
}

struct Env : StoreEnv {
  using StoreEnv::StoreEnv;
  std::unique_ptr<PrivacyStore> privacy = pg::make_privacy_store(pool);

  // The row versions of a list's rows (the list row, then its items): unchanged when
  // nothing rewrote them.
  awaitable<std::string> row_versions(std::string user, std::string name) {
    auto rows = co_await pool.query(
        "SELECT string_agg(x, ',') FROM (SELECT xmin::text || ctid::text AS x FROM privacy_lists "
        "WHERE username = $1 AND name = $2 UNION ALL (SELECT xmin::text || ctid::text "
        "FROM privacy_items WHERE username = $1 AND name = $2 ORDER BY ord)) AS v",
        pg::params(user, name));
    co_return std::string(rows.text(0, 0));
  }
};

}  // namespace

TEST_CASE("privacy: 0003 applies on top of 0002 and keeps the accounts") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  auto all = migrations();
  REQUIRE(all.size() >= 3);
  CHECK(label(all[2]) == "0003_privacy");
  run(env.io, [&]() -> awaitable<void> {
    CHECK((co_await migrate(env.pool, all.first(2))).size() == 2);
    REQUIRE(co_await env.accounts->create(D, "old", herald::sasl::Credentials()));
    auto applied = co_await migrate(env.pool);
    REQUIRE(applied.size() == all.size() - 2);
    CHECK(label(applied[0]) == "0003_privacy");
    CHECK(co_await check_schema(env.pool, "x"));
    CHECK(co_await env.accounts->exists(D, "old"));
    PrivacyLists lists = co_await env.privacy->load(D, "old");
    CHECK(lists.lists.empty());
    CHECK(lists.default_name.empty());
  });
}

TEST_CASE("privacy: a missing account") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  bool called = false;
  PrivacyLists one;
  one.lists.push_back(list("l", {blocked("a@x", 1)}));
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice"));
    PrivacyLists empty = co_await env.privacy->load(D, "nobody");
    CHECK(empty == PrivacyLists());
    auto result = co_await env.privacy->modify(
        D, "nobody", [&](const PrivacyLists&) -> std::optional<PrivacyLists> {
          called = true;
          return one;
        });
    CHECK_FALSE(result.has_value());
    CHECK_FALSE(called);
    CHECK(co_await env.count("SELECT count(*) FROM privacy_lists") == 0);
    // An account without lists: empty too.
    CHECK(co_await env.privacy->load(D, "alice") == PrivacyLists());
  });
}

TEST_CASE("privacy: lists round-trip exactly; only the difference is written") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  // Given unsorted; stored and returned bytewise by name, items by order.
  PrivacyLists initial;
  initial.lists.push_back(list("special", {blocked("eve@example.net", 10)}));
  initial.lists.push_back(everything());
  initial.lists.push_back(list("Zed", {}));
  initial.lists.push_back(list("é list", {item(Type::any, "", false, 0)}));
  initial.lists.push_back(list("blocklist", {blocked("a@x", 1), blocked("b@x", 2)}));
  initial.default_name = "blocklist";
  PrivacyLists expected = initial;
  expected.lists = {initial.lists[2], initial.lists[4], initial.lists[1], initial.lists[0],
                    initial.lists[3]};
  std::sort(expected.lists[2].items.begin(), expected.lists[2].items.end(),
            [](const PrivacyItem& a, const PrivacyItem& b) { return a.order < b.order; });
  const Strings sorted_names{"Zed", "blocklist", "everything", "special", "é list"};
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice", "bob"));
    auto& store = *env.privacy;

    int calls = 0;
    auto created = co_await store.modify(
        D, "alice", [&](const PrivacyLists& current) -> std::optional<PrivacyLists> {
          ++calls;
          CHECK(current == PrivacyLists());
          return initial;
        });
    CHECK(calls == 1);
    REQUIRE(created);
    CHECK(created->first == PrivacyLists());
    CHECK(created->second == expected);
    CHECK(names(created->second) == sorted_names);
    PrivacyLists loaded = co_await store.load(D, "alice");
    CHECK(loaded == expected);
    REQUIRE(loaded.lists.size() == 5);
    const auto& every = loaded.lists[2].items;
    REQUIRE(every.size() == 7);
    CHECK(every.front().order == 0);
    CHECK(every.back().order == 4294967295u);
    CHECK(every.back().type == Type::any);
    CHECK(every.back().value.empty());
    CHECK(every.back().allow);
    CHECK(every[1].value == "example.net");
    CHECK(every[2].value.empty());
    CHECK(every[2].type == Type::jid);
    CHECK(every[4].kinds == privacy_kind::all);
    CHECK(loaded.default_name == "blocklist");
    CHECK(co_await env.count("SELECT count(*) FROM privacy_items WHERE type IS NULL") == 2);
    CHECK(co_await env.count("SELECT count(*) FROM privacy_lists WHERE is_default") == 1);
    // Other accounts are separate.
    CHECK(co_await store.load(D, "bob") == PrivacyLists());

    const std::string every_rows = co_await env.row_versions("alice", "everything");
    const std::string zed_rows = co_await env.row_versions("alice", "Zed");

    // Replace one list's items.
    auto replaced = co_await store.modify(D, "alice", change([](PrivacyLists& l) {
                                            find(l, "blocklist")->items.push_back(
                                                blocked("c@x", 3));
                                            find(l, "blocklist")->items[0].kinds =
                                                privacy_kind::message;
                                          }));
    REQUIRE(replaced);
    CHECK(replaced->first == expected);
    PrivacyLists now = co_await store.load(D, "alice");
    CHECK(now == replaced->second);
    PrivacyList& blocklist = now.lists[1];
    REQUIRE(blocklist.items.size() == 3);
    CHECK(blocklist.items[0].kinds == privacy_kind::message);
    CHECK(blocklist.items[2].value == "c@x");
    CHECK(co_await env.row_versions("alice", "everything") == every_rows);  // untouched
    CHECK(co_await env.row_versions("alice", "Zed") == zed_rows);

    // Remove a list (its items go too), add one, and move the default to the new one.
    auto moved = co_await store.modify(D, "alice", change([](PrivacyLists& l) {
                                         std::erase_if(l.lists, [](const PrivacyList& x) {
                                           return x.name == "special";
                                         });
                                         l.lists.push_back(list("new", {blocked("z@x", 5)}));
                                         l.default_name = "new";
                                       }));
    REQUIRE(moved);
    now = co_await store.load(D, "alice");
    CHECK(now == moved->second);
    CHECK(names(now) == Strings{"Zed", "blocklist", "everything", "new", "é list"});
    CHECK(now.default_name == "new");
    CHECK(co_await env.count("SELECT count(*) FROM privacy_items WHERE name = 'special'") == 0);
    CHECK(co_await env.count("SELECT count(*) FROM privacy_lists WHERE is_default") == 1);
    CHECK(co_await env.row_versions("alice", "everything") == every_rows);

    // Default to an existing list, then removing the default list itself.
    auto to_zed = co_await store.modify(D, "alice",
                                        change([](PrivacyLists& l) { l.default_name = "Zed"; }));
    CHECK(to_zed->second.default_name == "Zed");
    CHECK((co_await store.load(D, "alice")).default_name == "Zed");
    auto drop_default = co_await store.modify(D, "alice", change([](PrivacyLists& l) {
                                                l.lists.erase(l.lists.begin());
                                                l.default_name = "blocklist";
                                              }));
    now = co_await store.load(D, "alice");
    CHECK(now == drop_default->second);
    CHECK(now.default_name == "blocklist");
    CHECK(names(now) == Strings{"blocklist", "everything", "new", "é list"});

    // Clear the default.
    auto cleared = co_await store.modify(D, "alice",
                                         change([](PrivacyLists& l) { l.default_name.clear(); }));
    CHECK(cleared->second.default_name.empty());
    now = co_await store.load(D, "alice");
    CHECK(now == cleared->second);
    CHECK(co_await env.count("SELECT count(*) FROM privacy_lists WHERE is_default") == 0);

    // Everything removed.
    auto none = co_await store.modify(D, "alice", set_to(PrivacyLists()));
    CHECK(none->first == now);
    CHECK(none->second == PrivacyLists());
    CHECK(co_await store.load(D, "alice") == PrivacyLists());
    CHECK(co_await env.count("SELECT count(*) FROM privacy_items") == 0);
  });
}

TEST_CASE("privacy: no change, a throwing update and invalid lists write nothing") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  PrivacyLists initial;
  initial.lists.push_back(everything());
  initial.lists.push_back(list("blocklist", {blocked("a@x", 1), blocked("b@x", 2)}));
  initial.default_name = "blocklist";
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice"));
    auto& store = *env.privacy;
    co_await store.modify(D, "alice", set_to(initial));
    const PrivacyLists stored = co_await store.load(D, "alice");
    const std::string rows = co_await env.row_versions("alice", "everything") +
                             co_await env.row_versions("alice", "blocklist");
    auto unchanged = [&]() -> awaitable<void> {
      CHECK(co_await store.load(D, "alice") == stored);
      CHECK(co_await env.row_versions("alice", "everything") +
                co_await env.row_versions("alice", "blocklist") ==
            rows);
    };

    // nullopt, or the same lists again (in another order).
    auto kept = co_await store.modify(D, "alice", keep());
    REQUIRE(kept);
    CHECK(kept->first == stored);
    CHECK(kept->second == stored);
    PrivacyLists shuffled = initial;
    std::swap(shuffled.lists[0], shuffled.lists[1]);
    std::swap(shuffled.lists[1].items[0], shuffled.lists[1].items[3]);
    auto same = co_await store.modify(D, "alice", set_to(shuffled));
    REQUIRE(same);
    CHECK(same->first == stored);
    CHECK(same->second == stored);
    co_await unchanged();

    // What update throws propagates; exactly one call.
    int calls = 0;
    bool threw = false;
    try {
      co_await store.modify(D, "alice", [&](const PrivacyLists&) -> std::optional<PrivacyLists> {
        ++calls;
        throw std::runtime_error("module bug");
      });
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "module bug";
    }
    CHECK(threw);
    CHECK(calls == 1);
    co_await unchanged();

    // Invalid results: storage::Error, nothing written (each also changes a valid list).
    std::vector<std::pair<std::string, Update>> invalid;
    invalid.emplace_back("default names a missing list", change([](PrivacyLists& l) {
                           l.lists.erase(l.lists.begin());  // the default, blocklist
                           l.lists[0].items.pop_back();
                         }));
    invalid.emplace_back("default names no list", change([](PrivacyLists& l) {
                           l.default_name = "nope";
                           l.lists[0].items.pop_back();
                         }));
    invalid.emplace_back("duplicate order", change([](PrivacyLists& l) {
                           l.lists[1].items.pop_back();
                           l.lists[0].items.push_back(blocked("c@x", 2));
                         }));
    invalid.emplace_back("duplicate name", change([](PrivacyLists& l) {
                           l.lists[1].items.pop_back();
                           l.lists.push_back(list("blocklist", {}));
                         }));
    invalid.emplace_back("unnamed list", change([](PrivacyLists& l) {
                           l.lists.push_back(list("", {}));
                         }));
    invalid.emplace_back("NUL in a value", change([](PrivacyLists& l) {
                           l.lists[0].items.push_back(blocked(std::string("a\0b", 3), 9));
                         }));
    invalid.emplace_back("kinds out of range", change([](PrivacyLists& l) {
                           l.lists[0].items[0].kinds = 16;
                         }));
    for (auto& [what, update] : invalid) {
      CAPTURE(what);
      bool failed = false;
      try {
        co_await store.modify(D, "alice", update);
      } catch (const Error&) {
        failed = true;
      }
      CHECK(failed);
      co_await unchanged();
    }

    // The connection is still usable afterwards.
    auto later = co_await store.modify(D, "alice",
                                       change([](PrivacyLists& l) { l.default_name.clear(); }));
    CHECK(later->second.default_name.empty());
  });
}

TEST_CASE("privacy: a 5000-item list round-trips") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  PrivacyLists big;
  PrivacyList blocklist = list("blocklist", {});
  for (std::uint32_t n = 0; n < 5000; ++n) {
    blocklist.items.push_back(blocked("user" + std::to_string(n) + "@spam.example", n * 3 + 1));
  }
  blocklist.items.push_back(item(Type::any, "", true, 4294967295u));
  big.lists.push_back(blocklist);
  big.lists.push_back(list("small", {blocked("x@y", 1)}));
  big.default_name = "blocklist";
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice"));
    auto& store = *env.privacy;
    auto created = co_await store.modify(D, "alice", set_to(big));
    REQUIRE(created);
    CHECK(created->second == big);
    CHECK(co_await store.load(D, "alice") == big);
    CHECK(co_await env.count("SELECT count(*) FROM privacy_items") == 5002);

    // One more blocked JID: the list is rewritten, the other one is not.
    const std::string small_rows = co_await env.row_versions("alice", "small");
    auto added = co_await store.modify(D, "alice", change([](PrivacyLists& l) {
                                         l.lists[0].items.insert(l.lists[0].items.begin(),
                                                                 blocked("first@x", 0));
                                       }));
    REQUIRE(added);
    PrivacyLists now = co_await store.load(D, "alice");
    CHECK(now == added->second);
    CHECK(now.lists[0].items.size() == 5002);
    CHECK(now.lists[0].items[0].value == "first@x");
    CHECK(co_await env.row_versions("alice", "small") == small_rows);
  });
}

TEST_CASE("privacy: removing the account removes its lists") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  PrivacyLists lists;
  lists.lists.push_back(everything());
  lists.lists.push_back(list("empty", {}));
  lists.default_name = "everything";
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice", "bob"));
    auto& store = *env.privacy;
    co_await store.modify(D, "alice", set_to(lists));
    co_await store.modify(D, "bob", set_to(lists));
    CHECK(co_await env.accounts->remove(D, "alice"));
    for (const char* table : {"privacy_lists", "privacy_items"}) {
      CAPTURE(table);
      CHECK(co_await env.count(std::string("SELECT count(*) FROM ") + table +
                               " WHERE username = 'alice'") == 0);
      CHECK(co_await env.count(std::string("SELECT count(*) FROM ") + table +
                               " WHERE username = 'bob'") > 0);
    }
    CHECK(co_await store.load(D, "alice") == PrivacyLists());
    CHECK_FALSE((co_await store.modify(D, "alice", set_to(lists))).has_value());
    // Re-created, the account starts over.
    REQUIRE(co_await env.accounts->create(D, "alice", herald::sasl::Credentials()));
    CHECK(co_await store.load(D, "alice") == PrivacyLists());
    CHECK((co_await store.load(D, "bob")).lists.size() == 2);
  });
}

TEST_CASE("privacy: concurrent modifications from two connections serialize") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  pg::Pool other(env.io, env.schema.options(1));
  auto other_store = pg::make_privacy_store(other);
  constexpr int kUpdates = 20;
  int finished = 0;
  std::string failure;
  run(env.io, [&]() -> awaitable<void> { co_await env.setup(users("alice")); });
  for (int i = 0; i < kUpdates; ++i) {
    PrivacyStore* store = i % 2 ? other_store.get() : env.privacy.get();
    asio::co_spawn(
        env.io,
        [&, i, store]() -> awaitable<void> {
          try {
            auto result = co_await store->modify(D, "alice", append(i));
            if (!result) failure = "no account";
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
    PrivacyLists lists = co_await env.privacy->load(D, "alice");
    PrivacyList* counter = find(lists, "counter");
    REQUIRE(counter);
    REQUIRE(counter->items.size() == static_cast<std::size_t>(kUpdates));
    std::vector<std::string> seen;
    for (std::uint32_t n = 0; n < counter->items.size(); ++n) {
      CHECK(counter->items[n].order == n);
      seen.push_back(counter->items[n].value);
    }
    std::sort(seen.begin(), seen.end());
    CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());  // every change kept
    CHECK(lists.lists.size() == 1 + 7);
    CHECK(lists.default_name.rfind("own", 0) == 0);
    CHECK(co_await env.count("SELECT count(*) FROM privacy_lists WHERE is_default") == 1);
  });
}
