#include "storage/pg/account_store.hpp"

#include <limits>
#include <stdexcept>

namespace herald::storage {

namespace {

// The names in scram_credentials.hash are part of the schema (a CHECK constraint lists
// them), so they are spelled here rather than borrowed from the SASL layer.
std::string_view column_name(sasl::Hash hash) {
  switch (hash) {
    case sasl::Hash::sha1: return "SHA-1";
    case sasl::Hash::sha256: return "SHA-256";
    case sasl::Hash::sha512: return "SHA-512";
  }
  throw std::invalid_argument("unknown SCRAM hash");
}

std::optional<sasl::Hash> hash_from_column(std::string_view name) {
  if (name == "SHA-1") return sasl::Hash::sha1;
  if (name == "SHA-256") return sasl::Hash::sha256;
  if (name == "SHA-512") return sasl::Hash::sha512;
  return std::nullopt;  // written by a newer build: not usable by this one
}

awaitable<void> insert_keys(pg::Connection& c, const std::string& domain,
                            const std::string& username, const sasl::Credentials& credentials) {
  for (const sasl::ScramKeys& keys : credentials.keys) {
    if (keys.iterations == 0 ||
        keys.iterations > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
      throw std::invalid_argument("SCRAM iteration count out of range");
    }
    co_await c.query(
        "INSERT INTO scram_credentials "
        "(domain, username, hash, salt, iterations, stored_key, server_key) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        pg::params(domain, username, column_name(keys.hash), pg::Param::bytea(keys.salt),
                   keys.iterations, pg::Param::bytea(keys.stored_key),
                   pg::Param::bytea(keys.server_key)));
  }
}

class PgAccountStore final : public AccountStore {
 public:
  explicit PgAccountStore(pg::Pool& pool) : pool_(pool) {}

  awaitable<std::optional<sasl::Credentials>> credentials(std::string domain,
                                                          std::string username) override {
    // LEFT JOIN: an account without keys (none usable) still exists.
    pg::Result rows = co_await pool_.query(
        "SELECT c.hash, c.salt, c.iterations, c.stored_key, c.server_key "
        "FROM accounts a LEFT JOIN scram_credentials c "
        "ON c.domain = a.domain AND c.username = a.username "
        "WHERE a.domain = $1 AND a.username = $2 ORDER BY c.hash",
        pg::params(domain, username));
    if (rows.rows() == 0) co_return std::nullopt;
    sasl::Credentials credentials;
    for (int r = 0; r < rows.rows(); ++r) {
      if (rows.is_null(r, 0)) continue;
      auto hash = hash_from_column(rows.text(r, 0));
      if (!hash) continue;
      credentials.keys.push_back({*hash, rows.bytea(r, 1),
                                  static_cast<std::uint32_t>(rows.integer(r, 2)), rows.bytea(r, 3),
                                  rows.bytea(r, 4)});
    }
    co_return credentials;
  }

  awaitable<bool> exists(std::string domain, std::string username) override {
    pg::Result rows = co_await pool_.query(
        "SELECT 1 FROM accounts WHERE domain = $1 AND username = $2", pg::params(domain, username));
    co_return rows.rows() > 0;
  }

  awaitable<bool> create(std::string domain, std::string username,
                         sasl::Credentials credentials) override {
    bool created = false;
    pg::Pool::Lease connection = co_await pool_.acquire();
    co_await pg::transaction(*connection, [&](pg::Connection& c) -> awaitable<void> {
      // ON CONFLICT instead of catching unique_violation: no error in the server log for
      // an ordinary "already registered".
      pg::Result inserted = co_await c.query(
          "INSERT INTO accounts (domain, username) VALUES ($1, $2) ON CONFLICT DO NOTHING",
          pg::params(domain, username));
      if (inserted.affected() == 0) co_return;
      co_await insert_keys(c, domain, username, credentials);
      created = true;
    });
    co_return created;
  }

  awaitable<bool> set_credentials(std::string domain, std::string username,
                                  sasl::Credentials credentials) override {
    bool found = false;
    pg::Pool::Lease connection = co_await pool_.acquire();
    co_await pg::transaction(*connection, [&](pg::Connection& c) -> awaitable<void> {
      // The row lock keeps a concurrent remove() from interleaving with the rewrite.
      pg::Result account =
          co_await c.query("SELECT 1 FROM accounts WHERE domain = $1 AND username = $2 FOR UPDATE",
                           pg::params(domain, username));
      if (account.rows() == 0) co_return;
      co_await c.query("DELETE FROM scram_credentials WHERE domain = $1 AND username = $2",
                       pg::params(domain, username));
      co_await insert_keys(c, domain, username, credentials);
      found = true;
    });
    co_return found;
  }

  awaitable<bool> remove(std::string domain, std::string username) override {
    // scram_credentials (and later every per-account table) go by ON DELETE CASCADE.
    pg::Result deleted = co_await pool_.query(
        "DELETE FROM accounts WHERE domain = $1 AND username = $2", pg::params(domain, username));
    co_return deleted.affected() > 0;
  }

  awaitable<std::vector<std::pair<std::string, std::string>>> list(
      std::optional<std::string> domain) override {
    // COLLATE "C": bytewise order, the same whatever the database's locale.
    std::string sql = "SELECT domain, username FROM accounts ";
    std::vector<pg::Param> params;
    if (domain) {
      sql += "WHERE domain = $1 ";
      params.emplace_back(*domain);
    }
    sql += "ORDER BY domain COLLATE \"C\", username COLLATE \"C\"";
    pg::Result rows = co_await pool_.query(std::move(sql), std::move(params));
    std::vector<std::pair<std::string, std::string>> accounts;
    accounts.reserve(static_cast<std::size_t>(rows.rows()));
    for (int r = 0; r < rows.rows(); ++r) {
      accounts.emplace_back(std::string(rows.text(r, 0)), std::string(rows.text(r, 1)));
    }
    co_return accounts;
  }

 private:
  pg::Pool& pool_;
};

}  // namespace

std::unique_ptr<AccountStore> pg::make_account_store(pg::Pool& pool) {
  return std::make_unique<PgAccountStore>(pool);
}

}  // namespace herald::storage
