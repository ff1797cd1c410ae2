// Shared by the PostgreSQL test files: HERALD_TEST_PG, a schema per test, and running a
// coroutine to completion.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

#include "server/net/asio.hpp"
#include "storage/pg/account_store.hpp"
#include "storage/pg/pool.hpp"
#include "storage/pg/schema.hpp"
#include "storage/stores.hpp"

namespace herald::storage::test {

using namespace std::chrono_literals;

inline std::optional<std::string> test_conninfo() {
  const char* value = std::getenv("HERALD_TEST_PG");
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

#define REQUIRE_PG(conninfo)                                             \
  auto conninfo = test_conninfo();                                       \
  if (!conninfo) {                                                       \
    MESSAGE("HERALD_TEST_PG is not set: skipping this PostgreSQL test"); \
    return;                                                              \
  }

// Runs body (a coroutine) to completion on io and rethrows what it threw.
template <class Body>
void run(asio::io_context& io, Body body) {
  std::exception_ptr failure;
  bool finished = false;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    failure = e;
    finished = true;
  });
  io.restart();
  io.run();
  REQUIRE(finished);
  if (failure) std::rethrow_exception(failure);
}

inline awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(use_awaitable);
}

// A schema of its own per test, selected through the connection's search_path.
class TestSchema {
 public:
  explicit TestSchema(std::string base) : base_(std::move(base)) {
    static int counter = 0;
    name_ = "herald_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    bool uri = base_.rfind("postgres://", 0) == 0 || base_.rfind("postgresql://", 0) == 0;
    if (uri) {
      conninfo_ = base_ + (base_.find('?') == std::string::npos ? "?" : "&") +
                  "options=-csearch_path%3D" + name_;
    } else {
      conninfo_ = base_ + " options='-csearch_path=" + name_ + "'";
    }
    admin("DROP SCHEMA IF EXISTS " + name_ + " CASCADE; CREATE SCHEMA " + name_);
  }
  ~TestSchema() {
    try {
      admin("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    } catch (...) {
    }
  }
  const std::string& conninfo() const { return conninfo_; }
  pg::Pool::Options options(std::size_t size = 2) const {
    pg::Pool::Options o;
    o.conninfo = conninfo_;
    o.size = size;
    o.connect_timeout = 5s;
    return o;
  }

 private:
  void admin(std::string sql) {
    asio::io_context io;
    pg::Pool pool(io, {base_, 1, 5s, 5s});
    run(io, [&]() -> awaitable<void> {
      auto lease = co_await pool.acquire();
      co_await lease->execute(sql);
    });
  }

  std::string base_, name_, conninfo_;
};

// What every store test starts from: its own schema, a pool, the account store; setup()
// migrates and creates the accounts (domain example.com). Test files derive and add the
// store they test.
struct StoreEnv {
  explicit StoreEnv(const std::string& conninfo, std::size_t size = 2)
      : schema(conninfo), pool(io, schema.options(size)) {}
  TestSchema schema;
  asio::io_context io;
  pg::Pool pool;
  std::unique_ptr<AccountStore> accounts = pg::make_account_store(pool);

  awaitable<void> setup(std::vector<std::string> users) {
    co_await migrate(pool);
    for (const auto& u : users) {
      REQUIRE(co_await accounts->create("example.com", u, herald::sasl::Credentials()));
    }
  }
  awaitable<std::int64_t> count(std::string sql) {
    auto rows = co_await pool.query(std::move(sql));
    co_return rows.integer(0, 0);
  }
};

}  // namespace herald::storage::test
