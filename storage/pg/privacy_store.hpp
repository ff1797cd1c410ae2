// PrivacyStore on PostgreSQL: tables privacy_lists and privacy_items
// (storage/migrations/0003_privacy.sql).
#pragma once

#include <memory>

#include "storage/pg/pool.hpp"
#include "storage/stores.hpp"

namespace herald::storage::pg {

// The store borrows the pool: the pool must outlive it.
std::unique_ptr<PrivacyStore> make_privacy_store(Pool& pool);

}  // namespace herald::storage::pg
