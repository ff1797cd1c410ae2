// RosterStore on PostgreSQL: accounts.roster_version and tables roster_items,
// roster_groups, subscription_requests and last_presence
// (storage/migrations/0002_roster.sql).
#pragma once

#include <memory>

#include "storage/pg/pool.hpp"
#include "storage/stores.hpp"

namespace herald::storage::pg {

// The store borrows the pool: the pool must outlive it.
std::unique_ptr<RosterStore> make_roster_store(Pool& pool);

}  // namespace herald::storage::pg
