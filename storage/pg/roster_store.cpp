#include "storage/pg/roster_store.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>

namespace herald::storage {

namespace {

// The spellings in roster_items.subscription are part of the schema (a CHECK lists them).
std::string_view column_name(Subscription s) {
  switch (s) {
    case Subscription::none: return "none";
    case Subscription::to: return "to";
    case Subscription::from: return "from";
    case Subscription::both: return "both";
  }
  throw std::invalid_argument("unknown subscription state");
}

Subscription subscription_from_column(std::string_view text) {
  if (text == "none") return Subscription::none;
  if (text == "to") return Subscription::to;
  if (text == "from") return Subscription::from;
  if (text == "both") return Subscription::both;
  throw Error("unknown subscription state in roster_items: " + std::string(text));
}

// Empty strings are stored as NULL. A function rather than ?: at the call sites: GCC 12
// destroys the temporaries of a conditional expression twice inside a coroutine.
pg::Param nullable(const std::string& text) {
  if (text.empty()) return pg::Param::null();
  return pg::Param(text);
}

const char* boolean(bool value) { return value ? "true" : "false"; }

bool boolean(const pg::Result& rows, int row, int col) { return rows.text(row, col) == "t"; }

// Text parameters travel as C strings: a NUL would silently cut the value short.
void check_text(std::string_view what, std::string_view value) {
  if (value.find('\0') != std::string_view::npos) {
    throw std::invalid_argument(std::string(what) + " contains a NUL character");
  }
}

// Nothing left of the item itself: stored as a tombstone (or not at all). pending_in
// lives in subscription_requests, independently.
bool empty_item(const ContactState& s) {
  return s.subscription == Subscription::none && !s.pending_out && !s.preapproved && !s.in_roster;
}

bool same_item(const ContactState& a, const ContactState& b) {
  return a.subscription == b.subscription && a.pending_out == b.pending_out &&
         a.preapproved == b.preapproved && a.in_roster == b.in_roster && a.name == b.name &&
         a.groups == b.groups;
}

// What get() reports: nullopt for state None.
std::optional<ContactState> reported(const ContactState& s) {
  if (empty_item(s) && !s.pending_in) return std::nullopt;
  return s;
}

void normalize(ContactState& s) {
  std::sort(s.groups.begin(), s.groups.end());
  s.groups.erase(std::unique(s.groups.begin(), s.groups.end()), s.groups.end());
  if (empty_item(s)) {
    s.name.clear();
    s.groups.clear();
  }
}

// The item columns every read selects, in this order, starting at column `first`:
// subscription, ask_out, preapproved, in_roster, name, groups (text[] or NULL),
// pending_in. A missing item (LEFT JOIN) reads as the empty state.
constexpr int kStateColumns = 7;

ContactState read_state(const pg::Result& rows, int row, int first) {
  ContactState s;
  if (!rows.is_null(row, first)) {
    s.subscription = subscription_from_column(rows.text(row, first));
    s.pending_out = boolean(rows, row, first + 1);
    s.preapproved = boolean(rows, row, first + 2);
    s.in_roster = boolean(rows, row, first + 3);
    s.name = std::string(rows.text(row, first + 4));
    if (!rows.is_null(row, first + 5)) {
      auto groups = pg::decode_text_array(rows.text(row, first + 5));
      if (!groups) throw Error("malformed roster groups from the database");
      s.groups = std::move(*groups);
    }
  }
  s.pending_in = boolean(rows, row, first + 6);
  return s;
}

// Groups sorted bytewise, matching std::sort on std::string.
constexpr const char* kGroups =
    "(SELECT array_agg(g.grp ORDER BY g.grp COLLATE \"C\") FROM roster_groups g "
    "WHERE g.domain = i.domain AND g.username = i.username AND g.contact = i.contact)";

// Columns: roster_version, contact, the state columns, then `extra`. One row with a NULL
// contact for an account without matching items, none without an account.
std::string items_query(std::string_view item_filter, std::string_view extra,
                        std::string_view order) {
  return std::string("SELECT a.roster_version, i.contact, i.subscription, i.ask_out, "
                     "i.preapproved, i.in_roster, i.name, ") +
         kGroups + ", s.contact IS NOT NULL" + std::string(extra) +
         " FROM accounts a "
         "LEFT JOIN roster_items i ON i.domain = a.domain AND i.username = a.username AND " +
         std::string(item_filter) +
         " LEFT JOIN subscription_requests s "
         "ON s.domain = i.domain AND s.username = i.username AND s.contact = i.contact "
         "WHERE a.domain = $1 AND a.username = $2 ORDER BY " +
         std::string(order);
}

// One contact, whether or not the item exists: the state columns, then the item's
// version (NULL when there is no row).
constexpr const char* kContactQuery =
    "SELECT i.subscription, i.ask_out, i.preapproved, i.in_roster, i.name, "
    "(SELECT array_agg(g.grp ORDER BY g.grp COLLATE \"C\") FROM roster_groups g "
    " WHERE g.domain = $1 AND g.username = $2 AND g.contact = $3), "
    "EXISTS (SELECT 1 FROM subscription_requests s "
    " WHERE s.domain = $1 AND s.username = $2 AND s.contact = $3), "
    "i.version "
    "FROM (VALUES (1)) AS one (x) LEFT JOIN roster_items i "
    "ON i.domain = $1 AND i.username = $2 AND i.contact = $3";

std::chrono::system_clock::time_point from_micros(std::int64_t micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(micros)));
}

std::vector<std::string> strings(const pg::Result& rows) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(rows.rows()));
  for (int r = 0; r < rows.rows(); ++r) out.emplace_back(rows.text(r, 0));
  return out;
}

class PgRosterStore final : public RosterStore {
 public:
  explicit PgRosterStore(pg::Pool& pool) : pool_(pool) {}

  awaitable<Roster> load(std::string domain, std::string username) override {
    // One statement, so one snapshot: the version matches the items.
    pg::Result rows = co_await pool_.query(
        items_query("i.in_roster", "", "i.contact COLLATE \"C\""), pg::params(domain, username));
    Roster roster;
    if (rows.rows() == 0) co_return roster;
    roster.version = rows.integer(0, 0);
    for (int r = 0; r < rows.rows(); ++r) {
      if (rows.is_null(r, 1)) continue;
      roster.items.push_back({std::string(rows.text(r, 1)), read_state(rows, r, 2)});
    }
    co_return roster;
  }

  awaitable<std::optional<std::vector<RosterChange>>> changes_since(
      std::string domain, std::string username, std::int64_t since) override {
    if (since < 0) co_return std::nullopt;
    // Tombstones are never pruned, so every version from 0 to the current one is known.
    pg::Result rows = co_await pool_.query(
        items_query("i.version > $3", ", i.version", "i.version, i.contact COLLATE \"C\""),
        pg::params(domain, username, since));
    if (rows.rows() == 0) co_return std::nullopt;                // no such account
    if (since > rows.integer(0, 0)) co_return std::nullopt;      // not a version we gave out
    constexpr int version_column = 2 + kStateColumns;
    std::vector<RosterChange> changes;
    for (int r = 0; r < rows.rows(); ++r) {
      if (rows.is_null(r, 1)) continue;
      RosterChange change;
      change.contact = std::string(rows.text(r, 1));
      ContactState state = read_state(rows, r, 2);
      if (state.in_roster) change.after = std::move(state);
      change.version = rows.integer(r, version_column);
      changes.push_back(std::move(change));
    }
    co_return changes;
  }

  awaitable<std::optional<ContactState>> get(std::string domain, std::string username,
                                             std::string contact) override {
    pg::Result rows = co_await pool_.query(kContactQuery, pg::params(domain, username, contact));
    co_return reported(read_state(rows, 0, 0));
  }

  awaitable<std::optional<RosterChange>> update(
      std::string domain, std::string username, std::string contact,
      std::function<std::optional<ContactState>(const ContactState& current)> compute,
      std::string request_stanza) override {
    check_text("contact", contact);
    std::optional<RosterChange> change;
    pg::Pool::Lease connection = co_await pool_.acquire();
    co_await pg::transaction(*connection, [&](pg::Connection& c) -> awaitable<void> {
      // The account row lock serialises every roster change of the user. NO KEY UPDATE
      // (what the roster_version UPDATE takes anyway) conflicts with itself and with
      // account removal, but not with the foreign key checks of other tables' inserts.
      // It comes first, in a statement of its own: under READ COMMITTED the next
      // statement's snapshot then sees everything the previous lock holder committed
      // (a join read in the locking statement could be stale after the wait).
      pg::Result account = co_await c.query(
          "SELECT roster_version FROM accounts WHERE domain = $1 AND username = $2 "
          "FOR NO KEY UPDATE",
          pg::params(domain, username));
      if (account.rows() == 0) co_return;
      const std::int64_t version = account.integer(0, 0);
      pg::Result current = co_await c.query(kContactQuery, pg::params(domain, username, contact));
      const ContactState before = read_state(current, 0, 0);
      const bool row_exists = !current.is_null(0, kStateColumns);
      const std::int64_t row_version = row_exists ? current.integer(0, kStateColumns) : 0;

      std::optional<ContactState> next = compute(before);
      if (next) normalize(*next);
      if (!next || *next == before) {
        change = RosterChange{contact, reported(before), reported(before), version};
        co_return;
      }
      const ContactState& after = *next;
      check_text("roster item name", after.name);
      for (const std::string& group : after.groups) check_text("roster group", group);
      check_text("subscription request", request_stanza);

      const bool bump = visible_change(before, after);
      const std::int64_t new_version = bump ? version + 1 : version;
      // The item's stamp: the version of its last visible change; 0 if never visible.
      const std::int64_t stamp = bump ? new_version : row_version;

      // Everything is written by one statement of data-modifying CTEs (they touch
      // different rows; the foreign keys are checked at its end).
      std::vector<pg::Param> params = pg::params(domain, username, contact);
      auto arg = [&](pg::Param p) {
        params.push_back(std::move(p));
        return "$" + std::to_string(params.size());
      };
      std::vector<std::string> parts;
      if (bump) {
        parts.push_back("UPDATE accounts SET roster_version = " + arg(new_version) +
                        " WHERE domain = $1 AND username = $2");
      }
      const bool keep_row = !empty_item(after) || (row_exists && stamp > 0);
      if (!keep_row) {
        if (row_exists) {  // never visible: nothing to remember (groups go by cascade)
          parts.push_back(
              "DELETE FROM roster_items WHERE domain = $1 AND username = $2 AND contact = $3");
        }
      } else {
        if (!row_exists || !same_item(before, after) || stamp != row_version) {
          parts.push_back(
              "INSERT INTO roster_items (domain, username, contact, name, subscription, ask_out, "
              "preapproved, in_roster, version, removed) VALUES ($1, $2, $3, " +
              arg(nullable(after.name)) + ", " +
              arg(column_name(after.subscription)) + ", " + arg(boolean(after.pending_out)) +
              ", " + arg(boolean(after.preapproved)) + ", " + arg(boolean(after.in_roster)) +
              ", " + arg(stamp) + ", " + arg(boolean(empty_item(after))) +
              ") ON CONFLICT (domain, username, contact) DO UPDATE SET name = EXCLUDED.name, "
              "subscription = EXCLUDED.subscription, ask_out = EXCLUDED.ask_out, "
              "preapproved = EXCLUDED.preapproved, in_roster = EXCLUDED.in_roster, "
              "version = EXCLUDED.version, removed = EXCLUDED.removed");
        }
        if (before.groups != after.groups) {
          std::string groups = arg(pg::encode_text_array(after.groups)) + "::text[]";
          if (!before.groups.empty()) {
            parts.push_back(
                "DELETE FROM roster_groups WHERE domain = $1 AND username = $2 AND contact = $3 "
                "AND grp <> ALL (" +
                groups + ")");
          }
          if (!after.groups.empty()) {
            parts.push_back(
                "INSERT INTO roster_groups (domain, username, contact, grp) "
                "SELECT $1, $2, $3, unnest(" +
                groups + ") ON CONFLICT DO NOTHING");
          }
        }
      }
      if (after.pending_in != before.pending_in) {
        if (after.pending_in) {
          parts.push_back(
              "INSERT INTO subscription_requests (domain, username, contact, stanza) "
              "VALUES ($1, $2, $3, " +
              arg(request_stanza) + ")");
        } else {
          parts.push_back(
              "DELETE FROM subscription_requests "
              "WHERE domain = $1 AND username = $2 AND contact = $3");
        }
      }
      if (!parts.empty()) {
        std::string sql = "WITH ";
        for (std::size_t n = 0; n < parts.size(); ++n) {
          if (n) sql += ", ";
          sql += "w" + std::to_string(n) + " AS (" + parts[n] + ")";
        }
        sql += " SELECT 1";
        co_await c.query(std::move(sql), std::move(params));
      }
      change = RosterChange{contact, reported(before), reported(after), new_version};
    });
    co_return change;
  }

  awaitable<std::vector<std::pair<std::string, std::string>>> pending_requests(
      std::string domain, std::string username) override {
    pg::Result rows = co_await pool_.query(
        "SELECT contact, stanza FROM subscription_requests WHERE domain = $1 AND username = $2 "
        "ORDER BY received_at, contact COLLATE \"C\"",
        pg::params(domain, username));
    std::vector<std::pair<std::string, std::string>> requests;
    requests.reserve(static_cast<std::size_t>(rows.rows()));
    for (int r = 0; r < rows.rows(); ++r) {
      requests.emplace_back(std::string(rows.text(r, 0)), std::string(rows.text(r, 1)));
    }
    co_return requests;
  }

  awaitable<std::vector<std::string>> subscribers(std::string domain,
                                                  std::string username) override {
    co_return strings(co_await pool_.query(
        "SELECT contact FROM roster_items WHERE domain = $1 AND username = $2 "
        "AND subscription IN ('from', 'both') ORDER BY contact COLLATE \"C\"",
        pg::params(domain, username)));
  }

  awaitable<std::vector<std::string>> subscriptions(std::string domain,
                                                    std::string username) override {
    co_return strings(co_await pool_.query(
        "SELECT contact FROM roster_items WHERE domain = $1 AND username = $2 "
        "AND subscription IN ('to', 'both') ORDER BY contact COLLATE \"C\"",
        pg::params(domain, username)));
  }

  awaitable<void> set_last_presence(std::string domain, std::string username, std::string stanza,
                                    std::string status) override {
    check_text("presence stanza", stanza);
    check_text("presence status", status);
    // INSERT ... SELECT FROM accounts: a no-op, not a foreign key error, when the account
    // was removed meanwhile. Committed without waiting for the WAL flush
    // (synchronous_commit off for this transaction only): a last presence is not worth a
    // disk flush per logout, and a crash loses at most the last few (docs/guarantees.md).
    co_await pool_.query(
        "WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) "
        "INSERT INTO last_presence (domain, username, stanza, status, logout_at) "
        "SELECT domain, username, $3, $4, now() FROM accounts, async "
        "WHERE domain = $1 AND username = $2 "
        "ON CONFLICT (domain, username) DO UPDATE SET stanza = EXCLUDED.stanza, "
        "status = EXCLUDED.status, logout_at = EXCLUDED.logout_at",
        pg::params(domain, username, nullable(stanza), nullable(status)));
  }

  awaitable<std::optional<LastPresence>> last_presence(std::string domain,
                                                       std::string username) override {
    pg::Result rows = co_await pool_.query(
        "SELECT stanza, status, (extract(epoch FROM logout_at) * 1000000)::bigint "
        "FROM last_presence WHERE domain = $1 AND username = $2",
        pg::params(domain, username));
    if (rows.rows() == 0) co_return std::nullopt;
    co_return LastPresence{std::string(rows.text(0, 0)), std::string(rows.text(0, 1)),
                           from_micros(rows.integer(0, 2))};
  }

 private:
  pg::Pool& pool_;
};

}  // namespace

std::unique_ptr<RosterStore> pg::make_roster_store(pg::Pool& pool) {
  return std::make_unique<PgRosterStore>(pool);
}

}  // namespace herald::storage
