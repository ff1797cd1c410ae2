// The statements ArchiveStore runs (storage/pg/archive_store.cpp), with their parameters.
// Public so that tests EXPLAIN exactly what the store executes and check that every
// query shape is an index range on archive_messages (migration 0004_offline_archive).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "storage/pg/connection.hpp"
#include "storage/stores.hpp"

namespace herald::storage::pg::archive_sql {

struct Statement {
  std::string sql;
  std::vector<Param> params;
};

inline constexpr std::size_t kExpireBatch = 10000;

// All entries in one INSERT ... SELECT FROM unnest(...) JOIN accounts: owners that do not
// exist are skipped, seq follows the order of `entries`, and an id the owner already has
// is skipped (ON CONFLICT DO NOTHING), so a retried append does not fail or duplicate.
// Throws storage::Error for text holding a NUL. No rows returned.
Statement append(const std::vector<ArchiveEntry>& entries);

// One statement (one snapshot) for a whole page. The after/before ids are resolved in
// CTEs through (domain, username, id); the page is an index range in seq order with
// LIMIT max + 1 (the extra row, dropped by the store, says the page is not complete);
// the count and the position come from one aggregate over the filter. Columns of every
// row: count, position (matches before the page's start: up to and including after_id
// for a forward page; below before_id, or all, for a page from the end), after_found,
// before_found, then the message: seq, id, with_jid, stanza, stamp (epoch
// microseconds). One row with NULL message columns when the page is empty; the rows are
// in seq order. Throws storage::Error for text holding a NUL.
Statement query(const std::string& domain, const std::string& username, const ArchiveQuery& q);

// Columns id, with_jid, stanza, stamp (epoch microseconds): the oldest row then the
// newest; none for an empty archive (the same row twice for one message).
Statement bounds(const std::string& domain, const std::string& username);

// Deletes at most `batch` of the oldest rows stamped before `before`; the row count
// (PQcmdTuples) tells whether another batch is needed.
Statement expire_batch(std::chrono::system_clock::time_point before, std::size_t batch);

}  // namespace herald::storage::pg::archive_sql
