#include "storage/pg/schema.hpp"

#include <cstdint>

namespace herald::storage {

namespace {

// pg_advisory_xact_lock key shared by every Herald migrator ("HERALDMG" in ASCII).
constexpr std::int64_t migration_lock = 0x484552414c444d47;

constexpr const char* create_schema_table = R"(
CREATE TABLE IF NOT EXISTS herald_schema (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))";

awaitable<std::vector<AppliedMigration>> read_applied(pg::Connection& connection) {
  std::vector<AppliedMigration> applied;
  pg::Result exists = co_await connection.query("SELECT to_regclass('herald_schema') IS NOT NULL");
  if (exists.text(0, 0) != "t") co_return applied;  // never migrated: version 0
  pg::Result rows = co_await connection.query(
      "SELECT version, name, checksum, "
      "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"') "
      "FROM herald_schema ORDER BY version");
  for (int r = 0; r < rows.rows(); ++r) {
    applied.push_back({static_cast<int>(rows.integer(r, 0)), std::string(rows.text(r, 1)),
                       std::string(rows.text(r, 2)), std::string(rows.text(r, 3))});
  }
  co_return applied;
}

void check_known(std::span<const Migration> known) {
  if (auto problem = validate(known))
    throw Error("this build's migrations are broken: " + *problem);
}

}  // namespace

awaitable<SchemaStatus> schema_status(pg::Pool& pool) {
  co_return co_await schema_status(pool, migrations());
}

awaitable<SchemaStatus> schema_status(pg::Pool& pool, std::span<const Migration> known) {
  check_known(known);
  pg::Pool::Lease connection = co_await pool.acquire();
  std::vector<AppliedMigration> applied = co_await read_applied(*connection);
  co_return compare(known, applied);
}

awaitable<SchemaCheck> check_schema(pg::Pool& pool, std::string config_path) {
  SchemaStatus status = co_await schema_status(pool);
  co_return evaluate(status, config_path);
}

awaitable<std::vector<Migration>> migrate(pg::Pool& pool) {
  co_return co_await migrate(pool, migrations());
}

awaitable<std::vector<Migration>> migrate(pg::Pool& pool, std::span<const Migration> known) {
  check_known(known);
  pg::Pool::Lease connection = co_await pool.acquire();
  co_await pg::transaction(*connection, [](pg::Connection& c) -> awaitable<void> {
    co_await c.query("SELECT pg_advisory_xact_lock($1::bigint)", pg::params(migration_lock));
    co_await c.query(create_schema_table);
  });

  std::vector<Migration> done;
  for (const Migration& migration : known) {
    bool applied_now = false;
    // Re-read under the lock each time: another migrator may have gone first.
    co_await pg::transaction(*connection, [&](pg::Connection& c) -> awaitable<void> {
      co_await c.query("SELECT pg_advisory_xact_lock($1::bigint)", pg::params(migration_lock));
      std::vector<AppliedMigration> applied = co_await read_applied(c);
      SchemaStatus status = compare(known, applied);
      for (const MigrationStatus& m : status.migrations) {
        if (m.state == MigrationState::checksum_mismatch || m.state == MigrationState::unknown) {
          throw SchemaRefused("not migrating: " + evaluate(status, {}).message);
        }
      }
      for (const AppliedMigration& row : applied) {
        if (row.version == migration.version) co_return;  // already there
      }
      try {
        co_await c.execute(std::string(migration.sql));
      } catch (const pg::QueryError& e) {
        throw pg::QueryError("migration " + label(migration) + " failed: " + e.what(), e.sqlstate);
      }
      co_await c.query("INSERT INTO herald_schema (version, name, checksum) VALUES ($1, $2, $3)",
                       pg::params(migration.version, migration.name, migration.checksum));
      applied_now = true;
    });
    if (applied_now) done.push_back(migration);
  }
  co_return done;
}

}  // namespace herald::storage
