// Reading and migrating the database schema. One implementation for the server (which
// only checks) and heraldctl (which migrates).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "storage/pg/pool.hpp"
#include "storage/schema.hpp"

namespace herald::storage {

// migrate() will not touch this database: a migration's checksum differs or the
// database is newer than this build. what() says which, and what to do.
struct SchemaRefused : Error {
  using Error::Error;
};

// What the database has applied compared to `known` (by default, this build's
// migrations). Read-only: an empty database reads as version 0 and is not touched.
awaitable<SchemaStatus> schema_status(pg::Pool& pool);
awaitable<SchemaStatus> schema_status(pg::Pool& pool, std::span<const Migration> known);

// For the server at start-up: ok, or a message saying what is wrong and which command
// fixes it (config_path goes into the suggested `heraldctl --config ... migrate`).
// Throws storage::Error if the database cannot be reached.
awaitable<SchemaCheck> check_schema(pg::Pool& pool, std::string config_path);

// Applies every pending migration in version order, each in its own transaction together
// with its herald_schema row, under an advisory lock so concurrent migrators queue
// instead of racing. Returns the migrations it applied (empty when already current).
// Refuses (SchemaRefused, nothing applied) if an applied migration's checksum differs
// or the database has versions this build does not know. A failing migration is rolled
// back whole; the ones before it stay applied.
awaitable<std::vector<Migration>> migrate(pg::Pool& pool);
awaitable<std::vector<Migration>> migrate(pg::Pool& pool, std::span<const Migration> known);

}  // namespace herald::storage
