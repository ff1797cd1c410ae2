// ArchiveStore on PostgreSQL: tables archive_messages and archive_prefs
// (storage/migrations/0004_offline_archive.sql). The statements it runs are built by
// storage/pg/archive_sql.hpp.
#pragma once

#include <cstddef>
#include <memory>

#include "storage/pg/archive_sql.hpp"
#include "storage/pg/pool.hpp"
#include "storage/stores.hpp"

namespace herald::storage::pg {

// The store borrows the pool: the pool must outlive it. expire() deletes at most
// `expire_batch` rows per statement (each its own transaction), so it never holds many
// row locks or a long transaction; tests pass a small batch to see several.
std::unique_ptr<ArchiveStore> make_archive_store(
    Pool& pool, std::size_t expire_batch = archive_sql::kExpireBatch);

}  // namespace herald::storage::pg
