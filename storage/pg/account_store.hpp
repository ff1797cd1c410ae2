// AccountStore on PostgreSQL: tables accounts and scram_credentials
// (storage/migrations/0001_accounts.sql).
#pragma once

#include <memory>

#include "storage/pg/pool.hpp"
#include "storage/stores.hpp"

namespace herald::storage::pg {

// The store borrows the pool: the pool must outlive it.
std::unique_ptr<AccountStore> make_account_store(Pool& pool);

}  // namespace herald::storage::pg
