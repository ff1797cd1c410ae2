// OfflineStore on PostgreSQL: table offline_messages
// (storage/migrations/0004_offline_archive.sql).
#pragma once

#include <memory>

#include "storage/pg/pool.hpp"
#include "storage/stores.hpp"

namespace herald::storage::pg {

// The store borrows the pool: the pool must outlive it.
std::unique_ptr<OfflineStore> make_offline_store(Pool& pool);

}  // namespace herald::storage::pg
