#include "storage/pg/offline_store.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace herald::storage {

namespace {

// Text parameters travel as C strings: a NUL would silently cut the value short.
void check_text(std::string_view what, std::string_view value) {
  if (value.find('\0') != std::string_view::npos) {
    throw Error(std::string(what) + " contains a NUL character");
  }
}

// A count or limit as a bigint parameter (size_t may exceed it).
std::int64_t bigint(std::size_t n) {
  constexpr auto top = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(n, top));
}

std::chrono::system_clock::time_point from_micros(std::int64_t micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(micros)));
}

std::string bigint_array(const std::vector<std::int64_t>& numbers) {
  std::string out = "{";
  for (std::size_t n = 0; n < numbers.size(); ++n) {
    if (n) out.push_back(',');
    out += std::to_string(numbers[n]);
  }
  out.push_back('}');
  return out;
}

class PgOfflineStore final : public OfflineStore {
 public:
  explicit PgOfflineStore(pg::Pool& pool) : pool_(pool) {}

  awaitable<Put> put(std::string domain, std::string username, std::string stanza,
                     std::size_t limit) override {
    check_text("offline stanza", stanza);
    const std::int64_t max = bigint(limit);
    Put result = Put::no_account;
    pg::Pool::Lease connection = co_await pool_.acquire();
    co_await pg::transaction(*connection, [&](pg::Connection& c) -> awaitable<void> {
      // The account row lock serialises the user's puts (NO KEY UPDATE: it does not block
      // inserts elsewhere that reference the account). In a statement of its own: a
      // statement that waited for the lock still reads with the snapshot it started
      // with, so the count below must be a later statement (READ COMMITTED: a new
      // snapshot, which sees what the put we waited for committed).
      pg::Result account = co_await c.query(
          "SELECT 1 FROM accounts WHERE domain = $1 AND username = $2 FOR NO KEY UPDATE",
          pg::params(domain, username));
      if (account.rows() == 0) co_return;
      result = Put::full;
      if (max == 0) co_return;
      // Counts no further than the limit: a full mailbox costs `limit` index entries.
      pg::Result inserted = co_await c.query(
          "INSERT INTO offline_messages (domain, username, stanza) SELECT $1, $2, $3 "
          "WHERE (SELECT count(*) FROM (SELECT 1 FROM offline_messages "
          "WHERE domain = $1 AND username = $2 LIMIT $4) AS held) < $4",
          pg::params(domain, username, stanza, max));
      if (inserted.affected() == 1) result = Put::stored;
    });
    co_return result;
  }

  awaitable<std::vector<OfflineMessage>> load(std::string domain, std::string username,
                                              std::size_t max) override {
    std::vector<OfflineMessage> out;
    if (max == 0) co_return out;
    pg::Result rows = co_await pool_.query(
        "SELECT id, stanza, (extract(epoch FROM stored_at) * 1000000)::bigint "
        "FROM offline_messages WHERE domain = $1 AND username = $2 ORDER BY id LIMIT $3",
        pg::params(domain, username, bigint(max)));
    out.reserve(static_cast<std::size_t>(rows.rows()));
    for (int r = 0; r < rows.rows(); ++r) {
      OfflineMessage m;
      m.id = rows.integer(r, 0);
      m.stanza = std::string(rows.text(r, 1));
      m.stored_at = from_micros(rows.integer(r, 2));
      out.push_back(std::move(m));
    }
    co_return out;
  }

  awaitable<void> remove(std::string domain, std::string username,
                         std::vector<std::int64_t> ids) override {
    if (ids.empty()) co_return;
    std::string array = bigint_array(ids);
    co_await pool_.query(
        "DELETE FROM offline_messages WHERE domain = $1 AND username = $2 "
        "AND id = ANY ($3::bigint[])",
        pg::params(domain, username, array));
  }

  awaitable<std::size_t> count(std::string domain, std::string username) override {
    pg::Result rows = co_await pool_.query(
        "SELECT count(*) FROM offline_messages WHERE domain = $1 AND username = $2",
        pg::params(domain, username));
    co_return static_cast<std::size_t>(rows.integer(0, 0));
  }

 private:
  pg::Pool& pool_;
};

}  // namespace

std::unique_ptr<OfflineStore> pg::make_offline_store(pg::Pool& pool) {
  return std::make_unique<PgOfflineStore>(pool);
}

}  // namespace herald::storage
