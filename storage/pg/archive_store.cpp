#include "storage/pg/archive_store.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>

#include "storage/pg/archive_sql.hpp"

namespace herald::storage {

namespace {

using Clock = std::chrono::system_clock;

// Text parameters travel as C strings: a NUL would silently cut the value short.
void check_text(std::string_view what, std::string_view value) {
  if (value.find('\0') != std::string_view::npos) {
    throw Error(std::string(what) + " contains a NUL character");
  }
}

std::int64_t bigint(std::size_t n) {
  constexpr auto top = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() - 1);
  return static_cast<std::int64_t>(std::min(n, top));
}

// Stamps are microseconds in the database; a bound with finer precision is rounded to
// the microseconds it actually admits (stamp >= ceil(start), stamp <= floor(end),
// stamp < ceil(before)), so comparisons mean what they would at full precision.
std::int64_t micros_ceil(Clock::time_point t) {
  return std::chrono::ceil<std::chrono::microseconds>(t.time_since_epoch()).count();
}
std::int64_t micros_floor(Clock::time_point t) {
  return std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
}

Clock::time_point from_micros(std::int64_t micros) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(micros)));
}

// A bigint parameter of epoch microseconds as a timestamptz, exactly (no float).
std::string timestamp(const std::string& placeholder) {
  return "(timestamptz 'epoch' + " + placeholder + "::bigint * interval '1 microsecond')";
}

constexpr const char* kStampMicros = "(extract(epoch FROM m.stamp) * 1000000)::bigint";

// The spellings in archive_prefs.default_mode are part of the schema (a CHECK lists them).
const char* mode_name(ArchivePrefs::Default mode) {
  switch (mode) {
    case ArchivePrefs::Default::always: return "always";
    case ArchivePrefs::Default::never: return "never";
    case ArchivePrefs::Default::roster: return "roster";
  }
  throw Error("unknown archiving default");
}

ArchivePrefs::Default mode_from_column(std::string_view text) {
  if (text == "always") return ArchivePrefs::Default::always;
  if (text == "never") return ArchivePrefs::Default::never;
  if (text == "roster") return ArchivePrefs::Default::roster;
  throw Error("unknown archiving default in archive_prefs: " + std::string(text));
}

void normalize(std::vector<std::string>& jids) {
  for (const auto& jid : jids) check_text("archiving preference JID", jid);
  std::sort(jids.begin(), jids.end());
  jids.erase(std::unique(jids.begin(), jids.end()), jids.end());
}

std::vector<std::string> jid_list(const pg::Result& rows, int row, int col) {
  auto list = pg::decode_text_array(rows.text(row, col));
  if (!list) throw Error("malformed archiving preference list from the database");
  normalize(*list);
  return std::move(*list);
}

ArchivedMessage read_message(const pg::Result& rows, int row, int first) {
  ArchivedMessage m;
  m.id = std::string(rows.text(row, first));
  m.with = std::string(rows.text(row, first + 1));
  m.stanza = std::string(rows.text(row, first + 2));
  m.stamp = from_micros(rows.integer(row, first + 3));
  return m;
}

}  // namespace

namespace pg::archive_sql {

Statement append(const std::vector<ArchiveEntry>& entries) {
  std::vector<std::string> domains, usernames, ids, withs, stanzas;
  domains.reserve(entries.size());
  usernames.reserve(entries.size());
  ids.reserve(entries.size());
  withs.reserve(entries.size());
  stanzas.reserve(entries.size());
  for (const ArchiveEntry& e : entries) {
    check_text("archive owner domain", e.domain);
    check_text("archive owner username", e.username);
    check_text("archive id", e.id);
    check_text("archive with", e.with);
    check_text("archived stanza", e.stanza);
    domains.push_back(e.domain);
    usernames.push_back(e.username);
    ids.push_back(e.id);
    withs.push_back(e.with);
    stanzas.push_back(e.stanza);
  }
  Statement s;
  // ORDER BY the entries' position: seq (the column default) is drawn row by row as the
  // rows reach the insert. FOR KEY SHARE keeps each owner until COMMIT; an owner
  // removed meanwhile is skipped like one that never existed, not a foreign key error.
  s.sql =
      "INSERT INTO archive_messages (domain, username, id, with_jid, stanza) "
      "SELECT e.domain, e.username, e.id, e.with_jid, e.stanza "
      "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
      "WITH ORDINALITY AS e (domain, username, id, with_jid, stanza, n) "
      "JOIN accounts a ON a.domain = e.domain AND a.username = e.username "
      "ORDER BY e.n FOR KEY SHARE OF a "
      "ON CONFLICT (domain, username, id) DO NOTHING";
  s.params = pg::params(encode_text_array(domains), encode_text_array(usernames),
                        encode_text_array(ids), encode_text_array(withs),
                        encode_text_array(stanzas));
  return s;
}

Statement query(const std::string& domain, const std::string& username, const ArchiveQuery& q) {
  check_text("archive owner domain", domain);
  check_text("archive owner username", username);
  Statement s;
  // $3: one more row than the page, to tell whether the page is complete.
  s.params = pg::params(domain, username, bigint(q.max) + 1);
  auto add = [&s](Param p) {
    s.params.push_back(std::move(p));
    return "$" + std::to_string(s.params.size());
  };

  // The filter (the set count and first_index refer to) ...
  std::string filter = "m.domain = $1 AND m.username = $2";
  if (q.with) {
    check_text("archive with", *q.with);
    filter += " AND m.with_jid = " + add(Param(*q.with));
  }
  if (q.start) filter += " AND m.stamp >= " + timestamp(add(Param(micros_ceil(*q.start))));
  if (q.end) filter += " AND m.stamp <= " + timestamp(add(Param(micros_floor(*q.end))));
  if (!q.ids.empty()) {
    for (const auto& id : q.ids) check_text("archive id", id);
    filter += " AND m.id = ANY (" + add(Param(encode_text_array(q.ids))) + "::text[])";
  }

  // ... and the page's bounds within it.
  std::string ctes, range, after_found = "true", before_found = "true";
  if (q.after_id) {
    check_text("archive after id", *q.after_id);
    ctes += "after_row AS (SELECT seq FROM archive_messages WHERE domain = $1 AND username = $2 "
            "AND id = " + add(Param(*q.after_id)) + "), ";
    range += " AND m.seq > (SELECT seq FROM after_row)";
    after_found = "EXISTS (SELECT 1 FROM after_row)";
  }
  if (q.before_id) {
    check_text("archive before id", *q.before_id);
    ctes += "before_row AS (SELECT seq FROM archive_messages WHERE domain = $1 AND username = $2 "
            "AND id = " + add(Param(*q.before_id)) + "), ";
    range += " AND m.seq < (SELECT seq FROM before_row)";
    before_found = "EXISTS (SELECT 1 FROM before_row)";
  }

  // Matches before the page's first message: for a forward page, those up to after_id
  // (the page starts right after it); from the end, those below before_id (or all)
  // minus the page itself, which the store subtracts.
  std::string position;
  if (!q.from_end) {
    position = q.after_id ? "count(*) FILTER (WHERE m.seq <= (SELECT seq FROM after_row))" : "0";
  } else {
    position = q.before_id ? "count(*) FILTER (WHERE m.seq < (SELECT seq FROM before_row))"
                           : "count(*)";
  }

  s.sql = "WITH " + ctes + "page AS (SELECT m.seq, m.id, m.with_jid, m.stanza, " + kStampMicros +
          " AS stamp_us FROM archive_messages m WHERE " + filter + range + " ORDER BY m.seq" +
          (q.from_end ? " DESC" : "") + " LIMIT $3), " +
          "stats AS (SELECT count(*) AS total, " + position +
          " AS position FROM archive_messages m WHERE " + filter + ") " +
          "SELECT s.total, s.position, " + after_found + ", " + before_found +
          ", p.seq, p.id, p.with_jid, p.stanza, p.stamp_us "
          "FROM stats s LEFT JOIN page p ON true ORDER BY p.seq";
  return s;
}

Statement bounds(const std::string& domain, const std::string& username) {
  Statement s;
  const std::string columns =
      std::string("SELECT m.id, m.with_jid, m.stanza, ") + kStampMicros +
      " FROM archive_messages m WHERE m.domain = $1 AND m.username = $2 ORDER BY m.seq";
  s.sql = "(" + columns + " LIMIT 1) UNION ALL (" + columns + " DESC LIMIT 1)";
  s.params = pg::params(domain, username);
  return s;
}

Statement expire_batch(std::chrono::system_clock::time_point before, std::size_t batch) {
  Statement s;
  // The batch's rows are found through the stamp index (oldest first) and deleted by
  // their physical address (a TID scan): no other index is needed for it. Rows are never
  // updated, so the addresses stay valid within the statement.
  s.sql =
      "DELETE FROM archive_messages WHERE ctid = ANY (ARRAY (SELECT ctid FROM archive_messages "
      "WHERE stamp < " + timestamp("$1") + " ORDER BY stamp LIMIT $2))";
  s.params = pg::params(micros_ceil(before), bigint(std::max<std::size_t>(batch, 1)));
  return s;
}

}  // namespace pg::archive_sql

namespace {

class PgArchiveStore final : public ArchiveStore {
 public:
  PgArchiveStore(pg::Pool& pool, std::size_t expire_batch)
      : pool_(pool), expire_batch_(std::max<std::size_t>(expire_batch, 1)) {}

  awaitable<void> append(std::vector<ArchiveEntry> entries) override {
    if (entries.empty()) co_return;
    pg::archive_sql::Statement statement = pg::archive_sql::append(entries);
    // One statement outside a transaction block: it commits when it returns.
    co_await pool_.query(std::move(statement.sql), std::move(statement.params));
  }

  awaitable<ArchivePage> query(std::string domain, std::string username,
                               ArchiveQuery q) override {
    pg::archive_sql::Statement statement = pg::archive_sql::query(domain, username, q);
    pg::Result rows = co_await pool_.query(std::move(statement.sql), std::move(statement.params));
    if (rows.rows() == 0) throw Error("archive query returned no rows");
    if (rows.text(0, 2) != "t" || rows.text(0, 3) != "t") throw Error("item-not-found");

    ArchivePage page;
    page.count = static_cast<std::size_t>(rows.integer(0, 0));
    const auto position = static_cast<std::size_t>(rows.integer(0, 1));
    int first = 0, last = rows.rows();  // the rows that are messages, [first, last)
    if (rows.is_null(0, 4)) last = 0;   // an empty page
    // The extra row beyond the page: the oldest from the end, else the newest.
    const std::size_t found = static_cast<std::size_t>(last - first);
    page.complete = found <= q.max;
    if (!page.complete) {
      if (q.from_end) {
        ++first;
      } else {
        --last;
      }
    }
    page.messages.reserve(static_cast<std::size_t>(last - first));
    for (int r = first; r < last; ++r) page.messages.push_back(read_message(rows, r, 5));
    if (!page.messages.empty()) {
      page.first_index = q.from_end ? position - page.messages.size() : position;
    }
    co_return page;
  }

  awaitable<std::optional<std::pair<ArchivedMessage, ArchivedMessage>>> bounds(
      std::string domain, std::string username) override {
    std::optional<std::pair<ArchivedMessage, ArchivedMessage>> out;
    pg::archive_sql::Statement statement = pg::archive_sql::bounds(domain, username);
    pg::Result rows = co_await pool_.query(std::move(statement.sql), std::move(statement.params));
    if (rows.rows() < 2) co_return out;
    out.emplace(read_message(rows, 0, 0), read_message(rows, 1, 0));
    co_return out;
  }

  awaitable<std::optional<ArchivePrefs>> prefs(std::string domain, std::string username) override {
    std::optional<ArchivePrefs> out;
    pg::Result rows = co_await pool_.query(
        "SELECT default_mode, always_jids, never_jids FROM archive_prefs "
        "WHERE domain = $1 AND username = $2",
        pg::params(domain, username));
    if (rows.rows() == 0) co_return out;
    ArchivePrefs stored;
    stored.default_mode = mode_from_column(rows.text(0, 0));
    stored.always = jid_list(rows, 0, 1);
    stored.never = jid_list(rows, 0, 2);
    out = std::move(stored);
    co_return out;
  }

  awaitable<bool> set_prefs(std::string domain, std::string username,
                            ArchivePrefs prefs) override {
    normalize(prefs.always);
    normalize(prefs.never);
    std::string mode = mode_name(prefs.default_mode);
    std::string always = pg::encode_text_array(prefs.always);
    std::string never = pg::encode_text_array(prefs.never);
    // INSERT ... SELECT FROM accounts: no row (false), not a foreign key error, without
    // an account.
    pg::Result rows = co_await pool_.query(
        "INSERT INTO archive_prefs (domain, username, default_mode, always_jids, never_jids) "
        "SELECT domain, username, $3, $4::text[], $5::text[] FROM accounts "
        "WHERE domain = $1 AND username = $2 "
        "ON CONFLICT (domain, username) DO UPDATE SET default_mode = EXCLUDED.default_mode, "
        "always_jids = EXCLUDED.always_jids, never_jids = EXCLUDED.never_jids",
        pg::params(domain, username, mode, always, never));
    co_return rows.affected() == 1;
  }

  awaitable<std::size_t> expire(std::chrono::system_clock::time_point before) override {
    std::size_t total = 0;
    for (;;) {
      // Each batch commits on its own, and the connection goes back to the pool between
      // batches, so a large expiry never starves the worker's other queries.
      pg::archive_sql::Statement statement = pg::archive_sql::expire_batch(before, expire_batch_);
      pg::Result rows =
          co_await pool_.query(std::move(statement.sql), std::move(statement.params));
      const auto deleted = static_cast<std::size_t>(rows.affected());
      total += deleted;
      // Until a batch finds nothing: a short batch may only mean that a concurrent
      // expiry took some of its rows (the last probe is one index lookup).
      if (deleted == 0) break;
    }
    co_return total;
  }

 private:
  pg::Pool& pool_;
  std::size_t expire_batch_;
};

}  // namespace

std::unique_ptr<ArchiveStore> pg::make_archive_store(pg::Pool& pool, std::size_t expire_batch) {
  return std::make_unique<PgArchiveStore>(pool, expire_batch);
}

}  // namespace herald::storage
