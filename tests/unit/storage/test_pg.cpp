// PostgreSQL integration tests. They need a server: set HERALD_TEST_PG to a libpq
// conninfo (e.g. "host=/tmp/pg dbname=herald_test user=herald"); each test works in a
// schema of its own and drops it afterwards. Without it they are skipped, except the
// ones that prove failures are bounded, which need no server at all.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "storage/pg/account_store.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/pool.hpp"
#include "storage/pg/schema.hpp"
#include "storage/schema.hpp"
#include "storage/stores.hpp"
#include "pg_fixture.hpp"

using namespace herald::storage;
using namespace herald::storage::test;
using namespace std::chrono_literals;

// GCC 12 false positive on Asio's recycling frame allocator once a coroutine frame is
// large (the accounts test): operator new and delete do match.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

TEST_CASE("pg: an unreachable server fails fast with storage::Error") {
  asio::io_context io;
  pg::Pool pool(io, {"host=/nonexistent/herald-test port=1 dbname=x", 1, 2s, 2s});
  auto start = std::chrono::steady_clock::now();
  std::string message;
  run(io, [&]() -> awaitable<void> {
    try {
      co_await pool.query("SELECT 1");
    } catch (const Error& e) {
      message = e.what();
    }
  });
  CHECK(message.find("cannot connect to PostgreSQL") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(pool.idle() == 1);  // the failed connection's slot came back
}

TEST_CASE("pg: a server that never answers hits connect_timeout instead of hanging") {
  asio::io_context io;
  // Listening but never accepting: the kernel completes the TCP handshake, then silence.
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto port = silent.local_endpoint().port();
  pg::Pool pool(io,
                {"host=127.0.0.1 port=" + std::to_string(port) + " dbname=x user=x", 1, 300ms, 2s});
  auto start = std::chrono::steady_clock::now();
  std::string message;
  run(io, [&]() -> awaitable<void> {
    try {
      co_await pool.query("SELECT 1");
    } catch (const Error& e) {
      message = e.what();
    }
  });
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(message == "cannot connect to PostgreSQL: no answer within 300 ms");
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 2s);
}

TEST_CASE("pg: malformed conninfo is reported, not thrown past the caller") {
  asio::io_context io;
  pg::Pool pool(io, {"host=/tmp bogus_option=1", 1, 1s, 1s});
  std::string message;
  run(io, [&]() -> awaitable<void> {
    try {
      co_await pool.query("SELECT 1");
    } catch (const Error& e) {
      message = e.what();
    }
  });
  CHECK(message.find("bogus_option") != std::string::npos);
}

TEST_CASE("pg: the pool runs queries from many coroutines concurrently") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(3));
  std::vector<long> results(9, -1);
  std::set<std::string> backends;
  int finished = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 9; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> awaitable<void> {
          auto rows = co_await pool.query("SELECT $1::int * 10, pg_backend_pid(), pg_sleep(0.3)",
                                          pg::params(i));
          results[i] = static_cast<long>(rows.integer(0, 0));
          backends.insert(std::string(rows.text(0, 1)));
          ++finished;
        },
        asio::detached);
  }
  CHECK(pool.waiting() == 0);  // nothing ran yet: co_spawn only queued them
  io.run();
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(finished == 9);
  for (int i = 0; i < 9; ++i) CHECK(results[i] == i * 10);
  CHECK(backends.size() == 3);
  CHECK(elapsed >= 900ms);  // three rounds of three
  CHECK(elapsed < 2500ms);  // not nine in a row
  CHECK(pool.idle() == 3);
  CHECK(pool.waiting() == 0);
}

TEST_CASE("pg: values round-trip: bytea in binary, big results, big parameters, NULL") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    auto rows = co_await pool.query("SELECT $1::bytea, length($1), $2::text IS NULL, $3::text",
                                    pg::params(pg::Param::bytea(all), pg::Param::null(), "é ✓"));
    CHECK(rows.rows() == 1);
    CHECK(rows.cols() == 4);
    CHECK(rows.bytea(0, 0) == all);
    CHECK(rows.integer(0, 1) == 256);
    CHECK(rows.text(0, 2) == "t");
    CHECK(rows.text(0, 3) == "é ✓");
    CHECK(rows.column("text") == 3);

    // Larger than libpq's buffers and the socket's: exercises the write waits of PQflush
    // and reading a result that arrives in many pieces.
    std::string big(8 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
    auto echo = co_await pool.query("SELECT $1::bytea", pg::params(pg::Param::bytea(big)));
    CHECK(echo.bytea(0, 0) == big);
    auto text = co_await pool.query("SELECT repeat('x', 20000000)");
    CHECK(text.text(0, 0).size() == 20000000);
  });
}

TEST_CASE("pg: a failed statement throws QueryError and the connection stays usable") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    auto lease = co_await pool.acquire();
    int pid = lease->backend_pid();
    std::string state, message;
    try {
      co_await lease->query("SELECT 1 / $1::int", pg::params(0));
    } catch (const pg::QueryError& e) {
      state = e.sqlstate;
      message = e.what();
    }
    CHECK(state == "22012");
    CHECK(message.find("division by zero") != std::string::npos);
    auto rows = co_await lease->query("SELECT 2");
    CHECK(rows.text(0, 0) == "2");
    CHECK(lease->backend_pid() == pid);

    // A failed transaction body is rolled back and the error propagates.
    co_await lease->query("CREATE TABLE t (x int PRIMARY KEY)");
    bool threw = false;
    try {
      co_await pg::transaction(*lease, [](pg::Connection& c) -> awaitable<void> {
        co_await c.query("INSERT INTO t VALUES (1)");
        co_await c.query("INSERT INTO t VALUES (1)");  // unique_violation
      });
    } catch (const pg::QueryError& e) {
      threw = e.sqlstate == "23505";
    }
    CHECK(threw);
    CHECK_FALSE(lease->in_transaction());
    auto count = co_await lease->query("SELECT count(*) FROM t");
    CHECK(count.integer(0, 0) == 0);
  });
}

TEST_CASE("pg: a connection the server dropped is reopened on next use") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  pg::Pool admin(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    int first = 0;
    {
      auto lease = co_await pool.acquire();
      first = lease->backend_pid();
    }
    co_await admin.query("SELECT pg_terminate_backend($1)", pg::params(first));
    co_await sleep_for(200ms);
    auto rows = co_await pool.query("SELECT pg_backend_pid()");
    CHECK(rows.integer(0, 0) != first);
  });
}

TEST_CASE("pg: a lease dropped inside a transaction does not leak it to the next user") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    co_await pool.query("CREATE TABLE t (x int)");
    {
      auto lease = co_await pool.acquire();
      co_await lease->query("BEGIN");
      co_await lease->query("INSERT INTO t VALUES (1)");
    }  // never committed
    auto lease = co_await pool.acquire();
    CHECK_FALSE(lease->in_transaction());
    auto rows = co_await lease->query("SELECT count(*) FROM t");
    CHECK(rows.integer(0, 0) == 0);
  });
}

TEST_CASE("pg: acquire gives up after acquire_timeout when every connection is busy") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  auto options = schema.options(1);
  options.acquire_timeout = 200ms;
  pg::Pool pool(io, options);
  run(io, [&]() -> awaitable<void> {
    auto held = co_await pool.acquire();
    std::string message;
    try {
      co_await pool.acquire();
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message == "all 1 PostgreSQL connections stayed busy for 200 ms");
    CHECK(pool.waiting() == 0);
  });
  CHECK(pool.idle() == 1);
}

TEST_CASE("pg: tearing down with a statement in flight and a waiter queued is safe") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  auto io = std::make_unique<asio::io_context>();
  auto pool = std::make_unique<pg::Pool>(*io, schema.options(1));
  bool started = false;
  asio::co_spawn(
      *io,
      [&]() -> awaitable<void> {
        auto lease = co_await pool->acquire();
        started = true;
        co_await lease->query("SELECT pg_sleep(5)");
      },
      asio::detached);
  asio::co_spawn(
      *io, [&]() -> awaitable<void> { co_await pool->query("SELECT 1"); }, asio::detached);
  io->run_for(500ms);
  CHECK(started);
  CHECK(pool->waiting() == 1);
  // A worker's order: the pool goes first, then the io_context, which destroys the
  // suspended coroutines; their leases and waiters must not touch freed memory (ASan).
  pool.reset();
  io.reset();
}

TEST_CASE("pg: migrate an empty database, then the schema checks out") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    SchemaCheck before = co_await check_schema(pool, "/etc/herald/herald.toml");
    CHECK_FALSE(before);
    std::string needs = "database schema is at version 0 but this Herald needs " +
                        std::to_string(migrations().back().version) + " (pending: 0001_accounts";
    CHECK(before.message.rfind(needs, 0) == 0);
    std::string fix = "): run `heraldctl --config /etc/herald/herald.toml migrate`";
    CHECK(before.message.size() > fix.size());
    CHECK(before.message.substr(before.message.size() - fix.size()) == fix);
    // Checking is read-only: it did not create herald_schema.
    auto table = co_await pool.query("SELECT to_regclass('herald_schema') IS NULL");
    CHECK(table.text(0, 0) == "t");

    auto applied = co_await migrate(pool);
    CHECK(applied.size() == migrations().size());
    CHECK(co_await check_schema(pool, "x"));
    SchemaStatus status = co_await schema_status(pool);
    CHECK(status.current());
    CHECK(status.database_version == migrations().back().version);
    CHECK_FALSE(status.migrations.front().applied_at.empty());

    CHECK((co_await migrate(pool)).empty());  // idempotent
    auto rows = co_await pool.query("SELECT count(*) FROM herald_schema");
    CHECK(rows.integer(0, 0) == static_cast<long>(migrations().size()));
  });
}

TEST_CASE("pg: a checksum mismatch or a newer database is reported and blocks migrate") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    co_await migrate(pool);

    co_await pool.query("UPDATE herald_schema SET checksum = 'other' WHERE version = 1");
    SchemaCheck mismatch = co_await check_schema(pool, "h.toml");
    CHECK_FALSE(mismatch);
    CHECK(mismatch.message.rfind(
              "checksum of migration 0001_accounts differs from this build: the database was "
              "migrated by a different Herald build",
              0) == 0);
    std::string refused;
    try {
      co_await migrate(pool);
    } catch (const Error& e) {
      refused = e.what();
    }
    CHECK(refused.find("not migrating: checksum of migration 0001_accounts") == 0);

    co_await pool.query("UPDATE herald_schema SET checksum = $1 WHERE version = 1",
                        pg::params(migrations()[0].checksum));
    co_await pool.query(
        "INSERT INTO herald_schema (version, name, checksum) VALUES (9999, 'future', 'x')");
    SchemaCheck newer = co_await check_schema(pool, "h.toml");
    CHECK_FALSE(newer);
    CHECK(newer.message.find("version 9999") != std::string::npos);
    CHECK(newer.message.find("9999_future") != std::string::npos);
    CHECK(newer.message.find("newer than this build") != std::string::npos);
    refused.clear();
    try {
      co_await migrate(pool);
    } catch (const Error& e) {
      refused = e.what();
    }
    CHECK(refused.find("not migrating:") == 0);
  });
}

TEST_CASE("pg: a failing migration is rolled back whole; earlier ones stay") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  const std::string checksum(64, '0');
  std::vector<Migration> known{
      {1, "first", "CREATE TABLE first_table (x int);", checksum},
      {2, "broken", "CREATE TABLE half_table (x int);\nSELECT 1 / 0;", checksum},
  };
  run(io, [&]() -> awaitable<void> {
    std::string message;
    try {
      co_await migrate(pool, known);
    } catch (const pg::QueryError& e) {
      message = e.what();
    }
    CHECK(message.find("migration 0002_broken failed") == 0);
    CHECK(message.find("division by zero") != std::string::npos);
    auto rows = co_await pool.query(
        "SELECT to_regclass('first_table') IS NOT NULL, to_regclass('half_table') IS NULL, "
        "(SELECT string_agg(version::text, ',') FROM herald_schema)");
    CHECK(rows.text(0, 0) == "t");
    CHECK(rows.text(0, 1) == "t");
    CHECK(rows.text(0, 2) == "1");
    SchemaStatus status = co_await schema_status(pool, known);
    CHECK(status.database_version == 1);
    CHECK(status.migrations[1].state == MigrationState::pending);
  });
}

TEST_CASE("pg: concurrent migrators apply each migration exactly once") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  const std::string checksum(64, '1');
  std::vector<Migration> known{
      {1, "a", "CREATE TABLE a (x int); SELECT pg_sleep(0.2);", checksum},
      {2, "b", "CREATE TABLE b (x int); SELECT pg_sleep(0.2);", checksum},
  };
  std::vector<std::unique_ptr<pg::Pool>> pools;
  std::size_t applied = 0;
  int finished = 0;
  std::string failure;
  for (int i = 0; i < 3; ++i) {
    pools.push_back(std::make_unique<pg::Pool>(io, schema.options(1)));
    asio::co_spawn(
        io,
        [&, i]() -> awaitable<void> {
          try {
            applied += (co_await migrate(*pools[i], known)).size();
          } catch (const std::exception& e) {
            failure = e.what();
          }
          ++finished;
        },
        asio::detached);
  }
  io.run();
  CHECK(failure == "");
  CHECK(finished == 3);
  CHECK(applied == 2);
}

TEST_CASE("pg: accounts: create, credentials, set, list, remove") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(2));
  auto store = pg::make_account_store(pool);
  using herald::sasl::Credentials;
  using herald::sasl::Hash;
  auto credentials = [](std::string tag, std::uint32_t iterations) {
    Credentials c;
    for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) {
      std::string salt("\0salt\xff", 6);
      c.keys.push_back({h, salt + tag + std::to_string(static_cast<int>(h)), iterations,
                        std::string("\0stored", 7) + tag, std::string("server\n\0", 8) + tag});
    }
    return c;
  };
  auto same = [](const Credentials& a, const Credentials& b) {
    if (a.keys.size() != b.keys.size()) return false;
    for (const auto& k : a.keys) {
      const auto* other = b.find(k.hash);
      if (!other || other->salt != k.salt || other->iterations != k.iterations ||
          other->stored_key != k.stored_key || other->server_key != k.server_key) {
        return false;
      }
    }
    return true;
  };
  // Bytewise order; outside the coroutine because GCC 12 rejects braced lists in one.
  using List = std::vector<std::pair<std::string, std::string>>;
  const List everyone{{"example.com", "Zed"},
                      {"example.com", "alice"},
                      {"example.com", "bob"},
                      {"example.org", "alice"}};
  const List org{{"example.org", "alice"}};
  run(io, [&]() -> awaitable<void> {
    co_await migrate(pool);

    CHECK_FALSE(co_await store->exists("example.com", "alice"));
    CHECK_FALSE((co_await store->credentials("example.com", "alice")).has_value());
    CHECK(co_await store->create("example.com", "alice", credentials("a", 4096)));
    CHECK_FALSE(co_await store->create("example.com", "alice", credentials("x", 4096)));
    CHECK(co_await store->create("example.com", "bob", credentials("b", 10000)));
    CHECK(co_await store->create("example.org", "alice", credentials("c", 4096)));
    CHECK(co_await store->create("example.com", "Zed", credentials("z", 4096)));
    CHECK(co_await store->exists("example.com", "alice"));
    CHECK_FALSE(co_await store->exists("example.net", "alice"));

    auto alice = co_await store->credentials("example.com", "alice");
    REQUIRE(alice.has_value());
    CHECK(same(*alice, credentials("a", 4096)));  // the losing create changed nothing

    CHECK(co_await store->set_credentials("example.com", "alice", credentials("new", 8192)));
    alice = co_await store->credentials("example.com", "alice");
    CHECK(same(*alice, credentials("new", 8192)));
    CHECK_FALSE(co_await store->set_credentials("example.com", "nobody", credentials("n", 1)));
    CHECK_FALSE(co_await store->exists("example.com", "nobody"));

    // Fewer hashes than before: the old ones go.
    Credentials only256 = credentials("s", 4096);
    only256.keys.erase(only256.keys.begin());
    only256.keys.pop_back();
    CHECK(co_await store->set_credentials("example.com", "bob", only256));
    auto bob = co_await store->credentials("example.com", "bob");
    CHECK(same(*bob, only256));

    CHECK(co_await store->list(std::nullopt) == everyone);
    CHECK(co_await store->list(std::string("example.org")) == org);
    CHECK((co_await store->list(std::string("example.net"))).empty());

    CHECK(co_await store->remove("example.com", "alice"));
    CHECK_FALSE(co_await store->remove("example.com", "alice"));
    CHECK_FALSE(co_await store->exists("example.com", "alice"));
    CHECK_FALSE((co_await store->credentials("example.com", "alice")).has_value());
    auto left = co_await pool.query(
        "SELECT count(*) FROM scram_credentials WHERE domain = 'example.com' AND username = "
        "'alice'");
    CHECK(left.integer(0, 0) == 0);  // ON DELETE CASCADE
    CHECK(co_await store->exists("example.org", "alice"));

    // Iterations that do not fit the column are refused before reaching the database.
    bool refused = false;
    try {
      co_await store->create("example.com", "huge", credentials("h", 0x80000000u));
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    CHECK(refused);
    CHECK_FALSE(co_await store->exists("example.com", "huge"));  // rolled back
  });
}

TEST_CASE("pg: stores throw storage::Error when the database is gone") {
  asio::io_context io;
  pg::Pool pool(io, {"host=/nonexistent/herald-test port=1", 1, 1s, 1s});
  auto store = pg::make_account_store(pool);
  int errors = 0;
  run(io, [&]() -> awaitable<void> {
    try {
      co_await store->exists("example.com", "alice");
    } catch (const Error&) {
      ++errors;
    }
    try {
      co_await store->create("example.com", "alice", herald::sasl::Credentials());
    } catch (const Error&) {
      ++errors;
    }
  });
  CHECK(errors == 2);
}

TEST_CASE("pg: each statement text is prepared once per connection and then reused") {
  REQUIRE_PG(conninfo);
  TestSchema schema(*conninfo);
  asio::io_context io;
  pg::Pool pool(io, schema.options(1));
  run(io, [&]() -> awaitable<void> {
    auto lease = co_await pool.acquire();
    const std::string sql = "SELECT $1::int + 1";
    for (int i = 0; i < 3; ++i) {
      auto rows = co_await lease->query(sql, pg::params(i));
      CHECK(rows.integer(0, 0) == i + 1);
    }
    // The server holds one named statement with that text, executed (not re-parsed) since.
    auto held = co_await lease->query(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", pg::params(sql));
    CHECK(held.integer(0, 0) == 1);
    // A statement the server rejects is not remembered, and the connection goes on.
    bool rejected = false;
    try {
      co_await lease->query("SELEC 1");
    } catch (const pg::QueryError&) {
      rejected = true;
    }
    CHECK(rejected);
    auto bad = co_await lease->query(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELEC 1'");
    CHECK(bad.integer(0, 0) == 0);
    auto again = co_await lease->query(sql, pg::params(41));
    CHECK(again.integer(0, 0) == 42);
  });
}
