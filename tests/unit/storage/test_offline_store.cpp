// OfflineStore on PostgreSQL (storage/pg/offline_store.cpp, migration 0004_offline_archive).
// Needs HERALD_TEST_PG like test_pg.cpp; skipped without it.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pg_fixture.hpp"
#include "server/net/asio.hpp"
#include "storage/pg/account_store.hpp"
#include "storage/pg/offline_store.hpp"
#include "storage/pg/pool.hpp"
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

using Strings = std::vector<std::string>;
using Ids = std::vector<std::int64_t>;
using Put = OfflineStore::Put;

const std::string D = "example.com";

template <class... Names>
Strings users(Names... user) {
  return Strings{user...};
}

Strings stanzas(const std::vector<OfflineMessage>& messages) {
  Strings out;
  for (const auto& m : messages) out.push_back(m.stanza);
  return out;
}

Ids ids(const std::vector<OfflineMessage>& messages) {
  Ids out;
  for (const auto& m : messages) out.push_back(m.id);
  return out;
}

std::string msg(int n) { return "<message id='m" + std::to_string(n) + "'><body>" +
                                std::to_string(n) + "</body></message>"; }

struct Env : StoreEnv {
  using StoreEnv::StoreEnv;
  std::unique_ptr<OfflineStore> offline = pg::make_offline_store(pool);
};

}  // namespace

TEST_CASE("offline: 0004 applies on top of 0003 and keeps the accounts") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 1);
  auto all = migrations();
  REQUIRE(all.size() >= 4);
  CHECK(label(all[3]) == "0004_offline_archive");
  run(env.io, [&]() -> awaitable<void> {
    CHECK((co_await migrate(env.pool, all.first(3))).size() == 3);
    REQUIRE(co_await env.accounts->create(D, "old", herald::sasl::Credentials()));
    auto applied = co_await migrate(env.pool);
    REQUIRE(applied.size() == all.size() - 3);
    CHECK(label(applied[0]) == "0004_offline_archive");
    CHECK(co_await check_schema(env.pool, "x"));
    CHECK(co_await env.accounts->exists(D, "old"));
    CHECK(co_await env.offline->count(D, "old") == 0);
    CHECK(co_await env.offline->put(D, "old", "<message/>", 10) == Put::stored);
  });
}

TEST_CASE("offline: put, load in arrival order, count, remove by ids") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice", "bob"));
    auto& store = *env.offline;
    CHECK(co_await store.count(D, "alice") == 0);
    CHECK((co_await store.load(D, "alice", 10)).empty());

    const auto before = std::chrono::system_clock::now();
    for (int n = 0; n < 5; ++n) CHECK(co_await store.put(D, "alice", msg(n), 100) == Put::stored);
    CHECK(co_await store.put(D, "bob", msg(100), 100) == Put::stored);
    // Stored as given, byte for byte (UTF-8, quotes, newlines).
    const std::string odd = "<message>\xc3\xa9 \"'&amp;\n\t</message>";
    CHECK(co_await store.put(D, "alice", odd, 100) == Put::stored);
    const auto after = std::chrono::system_clock::now();

    CHECK(co_await store.count(D, "alice") == 6);
    CHECK(co_await store.count(D, "bob") == 1);
    auto all = co_await store.load(D, "alice", 100);
    CHECK(stanzas(all) == Strings{msg(0), msg(1), msg(2), msg(3), msg(4), odd});
    Ids got = ids(all);
    CHECK(std::is_sorted(got.begin(), got.end()));
    CHECK(std::adjacent_find(got.begin(), got.end()) == got.end());
    for (const auto& m : all) {
      // Microseconds, from the database clock (same machine): within the test's window.
      CHECK(m.stored_at >= std::chrono::floor<std::chrono::seconds>(before));
      CHECK(m.stored_at <= after + 1s);
      CHECK(m.stored_at.time_since_epoch() % 1us == 0ns);
    }

    // max limits the page, oldest first; 0 loads nothing.
    auto two = co_await store.load(D, "alice", 2);
    CHECK(stanzas(two) == Strings{msg(0), msg(1)});
    CHECK((co_await store.load(D, "alice", 0)).empty());

    // Remove some ids, plus an unknown one and bob's: only alice's listed ones go.
    auto bobs = co_await store.load(D, "bob", 10);
    REQUIRE(bobs.size() == 1);
    Ids doomed{all[0].id, all[2].id, all[5].id, bobs[0].id, 999999999};
    co_await store.remove(D, "alice", doomed);
    auto left = co_await store.load(D, "alice", 100);
    CHECK(stanzas(left) == Strings{msg(1), msg(3), msg(4)});
    CHECK(co_await store.count(D, "bob") == 1);
    const Ids none;
    co_await store.remove(D, "alice", none);
    CHECK(co_await store.count(D, "alice") == 3);

    // Messages stored after a load are not touched by removing what was loaded.
    auto loaded = co_await store.load(D, "alice", 100);
    CHECK(co_await store.put(D, "alice", msg(7), 100) == Put::stored);
    co_await store.remove(D, "alice", ids(loaded));
    auto newer = co_await store.load(D, "alice", 100);
    CHECK(stanzas(newer) == Strings{msg(7)});

    // Removing the account removes its messages.
    CHECK(co_await env.accounts->remove(D, "bob"));
    CHECK(co_await env.count("SELECT count(*) FROM offline_messages WHERE username = 'bob'") == 0);
  });
}

TEST_CASE("offline: the limit, limit 0, and a missing account") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo);
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice"));
    auto& store = *env.offline;
    CHECK(co_await store.put(D, "nobody", msg(1), 10) == Put::no_account);
    CHECK(co_await store.put(D, "nobody", msg(1), 0) == Put::no_account);
    const std::string other_domain = "example.net";
    CHECK(co_await store.put(other_domain, "alice", msg(1), 10) == Put::no_account);
    CHECK(co_await env.count("SELECT count(*) FROM offline_messages") == 0);
    CHECK(co_await store.count(D, "nobody") == 0);
    CHECK((co_await store.load(D, "nobody", 10)).empty());

    CHECK(co_await store.put(D, "alice", msg(0), 0) == Put::full);
    CHECK(co_await store.count(D, "alice") == 0);
    for (int n = 0; n < 3; ++n) CHECK(co_await store.put(D, "alice", msg(n), 3) == Put::stored);
    CHECK(co_await store.put(D, "alice", msg(3), 3) == Put::full);
    CHECK(co_await store.put(D, "alice", msg(3), 2) == Put::full);  // already above
    CHECK(co_await store.put(D, "alice", msg(3), 4) == Put::stored);
    CHECK(co_await store.count(D, "alice") == 4);
    // No limit in practice.
    CHECK(co_await store.put(D, "alice", msg(4), static_cast<std::size_t>(-1)) == Put::stored);
    CHECK(co_await store.count(D, "alice") == 5);

    // A NUL cannot be stored as text: an error, nothing written.
    bool threw = false;
    const std::string nul("a\0b", 3);
    try {
      co_await store.put(D, "alice", nul, 100);
    } catch (const Error&) {
      threw = true;
    }
    CHECK(threw);
    CHECK(co_await store.count(D, "alice") == 5);
  });
}

TEST_CASE("offline: concurrent puts never exceed the limit") {
  REQUIRE_PG(conninfo);
  Env env(*conninfo, 8);
  std::vector<Put> results;
  run(env.io, [&]() -> awaitable<void> {
    co_await env.setup(users("alice", "bob"));
  });
  // 20 puts for alice (limit 10) and 5 for bob at once, on 8 connections.
  int finished = 0;
  for (int n = 0; n < 25; ++n) {
    const std::string user = n % 5 == 4 ? "bob" : "alice";
    asio::co_spawn(
        env.io,
        [&env, &results, user, n]() -> awaitable<void> {
          Put put = co_await env.offline->put(D, user, msg(n), 10);
          if (user == "alice") results.push_back(put);
        },
        [&finished](std::exception_ptr e) {
          ++finished;
          if (e) std::rethrow_exception(e);
        });
  }
  env.io.restart();
  env.io.run();
  CHECK(finished == 25);
  REQUIRE(results.size() == 20);
  CHECK(std::count(results.begin(), results.end(), Put::stored) == 10);
  CHECK(std::count(results.begin(), results.end(), Put::full) == 10);
  run(env.io, [&]() -> awaitable<void> {
    CHECK(co_await env.offline->count(D, "alice") == 10);
    CHECK(co_await env.offline->count(D, "bob") == 5);
    auto loaded = co_await env.offline->load(D, "alice", 100);
    CHECK(loaded.size() == 10);
  });
}
