#include "storage/pg/privacy_store.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <string_view>

namespace herald::storage {

namespace {

using Type = PrivacyItem::Type;

// The spellings in privacy_items.type are part of the schema (a CHECK lists them); the
// fall-through item (any) is NULL, sent as '' in the insert's array and turned back by
// NULLIF.
std::string_view column_name(Type type) {
  switch (type) {
    case Type::any: return "";
    case Type::jid: return "jid";
    case Type::group: return "group";
    case Type::subscription: return "subscription";
  }
  throw Error("unknown privacy item type");
}

Type type_from_column(const pg::Result& rows, int row, int col) {
  if (rows.is_null(row, col)) return Type::any;
  std::string_view text = rows.text(row, col);
  if (text == "jid") return Type::jid;
  if (text == "group") return Type::group;
  if (text == "subscription") return Type::subscription;
  throw Error("unknown privacy item type in privacy_items: " + std::string(text));
}

// Every list with its items, lists bytewise by name, items by order. A list without
// items is one row with NULL item columns. No rows without an account (or lists).
// Columns: name, is_default, ord, type, value, action, kinds.
constexpr const char* kLoadQuery =
    "SELECT l.name, l.is_default, i.ord, i.type, i.value, i.action, i.kinds "
    "FROM privacy_lists l LEFT JOIN privacy_items i "
    "ON i.domain = l.domain AND i.username = l.username AND i.name = l.name "
    "WHERE l.domain = $1 AND l.username = $2 ORDER BY l.name COLLATE \"C\", i.ord";

PrivacyLists read_lists(const pg::Result& rows) {
  PrivacyLists out;
  for (int r = 0; r < rows.rows(); ++r) {
    std::string_view name = rows.text(r, 0);
    if (out.lists.empty() || out.lists.back().name != name) {
      out.lists.push_back({std::string(name), {}});
      if (rows.text(r, 1) == "t") out.default_name = std::string(name);
    }
    if (rows.is_null(r, 2)) continue;
    PrivacyItem item;
    item.order = static_cast<std::uint32_t>(rows.integer(r, 2));
    item.type = type_from_column(rows, r, 3);
    item.value = std::string(rows.text(r, 4));
    item.allow = rows.text(r, 5) == "allow";
    item.kinds = static_cast<std::uint8_t>(rows.integer(r, 6));
    out.lists.back().items.push_back(std::move(item));
  }
  return out;
}

// Text parameters travel as C strings: a NUL would silently cut the value short.
void check_text(std::string_view what, std::string_view value) {
  if (value.find('\0') != std::string_view::npos) {
    throw Error(std::string(what) + " contains a NUL character");
  }
}

// Sorts what `update` returned into the stored order (lists by name, items by order) and
// refuses what the schema could not hold, before anything is written.
void normalize(PrivacyLists& next) {
  auto by_name = [](const PrivacyList& a, const PrivacyList& b) { return a.name < b.name; };
  std::sort(next.lists.begin(), next.lists.end(), by_name);
  bool default_found = next.default_name.empty();
  for (std::size_t n = 0; n < next.lists.size(); ++n) {
    PrivacyList& list = next.lists[n];
    if (list.name.empty()) throw Error("privacy list without a name");
    check_text("privacy list name", list.name);
    if (n > 0 && next.lists[n - 1].name == list.name) {
      throw Error("duplicate privacy list name: " + list.name);
    }
    default_found = default_found || list.name == next.default_name;
    std::stable_sort(list.items.begin(), list.items.end(),
                     [](const PrivacyItem& a, const PrivacyItem& b) { return a.order < b.order; });
    for (std::size_t i = 0; i < list.items.size(); ++i) {
      const PrivacyItem& item = list.items[i];
      if (i > 0 && list.items[i - 1].order == item.order) {
        throw Error("duplicate order " + std::to_string(item.order) + " in privacy list " +
                    list.name);
      }
      if (item.kinds > privacy_kind::all) throw Error("invalid privacy item stanza kinds");
      column_name(item.type);  // throws for a value outside the enum
      check_text("privacy item value", item.value);
    }
  }
  if (!default_found) throw Error("the default privacy list does not exist: " + next.default_name);
}

// An array literal of numbers for a $n::bigint[] / $n::smallint[] parameter.
template <class T>
std::string number_array(const std::vector<T>& numbers) {
  std::string out = "{";
  for (std::size_t n = 0; n < numbers.size(); ++n) {
    if (n) out.push_back(',');
    out += std::to_string(numbers[n]);
  }
  out.push_back('}');
  return out;
}

// The items of several lists as columns, for one INSERT ... SELECT FROM unnest(...).
struct ItemColumns {
  std::vector<std::string> names, types, values, actions;
  std::vector<std::int64_t> orders;
  std::vector<int> kinds;

  void add(const PrivacyList& list) {
    for (const PrivacyItem& item : list.items) {
      names.push_back(list.name);
      orders.push_back(item.order);
      types.emplace_back(column_name(item.type));
      values.push_back(item.value);
      actions.emplace_back(item.allow ? "allow" : "deny");
      kinds.push_back(item.kinds);
    }
  }
};

const PrivacyList* find(const PrivacyLists& lists, const std::string& name) {
  auto it = std::lower_bound(
      lists.lists.begin(), lists.lists.end(), name,
      [](const PrivacyList& list, const std::string& key) { return list.name < key; });
  if (it == lists.lists.end() || it->name != name) return nullptr;
  return &*it;
}

class PgPrivacyStore final : public PrivacyStore {
 public:
  explicit PgPrivacyStore(pg::Pool& pool) : pool_(pool) {}

  awaitable<PrivacyLists> load(std::string domain, std::string username) override {
    // One statement, so one snapshot: the default matches the lists and their items.
    pg::Result rows = co_await pool_.query(kLoadQuery, pg::params(domain, username));
    co_return read_lists(rows);
  }

  awaitable<std::optional<std::pair<PrivacyLists, PrivacyLists>>> modify(
      std::string domain, std::string username,
      std::function<std::optional<PrivacyLists>(const PrivacyLists& current)> compute) override {
    std::optional<std::pair<PrivacyLists, PrivacyLists>> result;
    pg::Pool::Lease connection = co_await pool_.acquire();
    co_await pg::transaction(*connection, [&](pg::Connection& c) -> awaitable<void> {
      // The account row lock serialises every privacy change of the user (see
      // RosterStore::update for why NO KEY UPDATE, and why in a statement of its own).
      pg::Result account = co_await c.query(
          "SELECT 1 FROM accounts WHERE domain = $1 AND username = $2 FOR NO KEY UPDATE",
          pg::params(domain, username));
      if (account.rows() == 0) co_return;
      pg::Result rows = co_await c.query(kLoadQuery, pg::params(domain, username));
      PrivacyLists before = read_lists(rows);

      std::optional<PrivacyLists> next = compute(before);
      if (next) normalize(*next);
      if (!next || *next == before) {
        result.emplace(before, before);
        co_return;
      }
      const PrivacyLists& after = *next;

      // The difference, in statements that each touch many rows at once.
      std::vector<std::string> removed, replaced, created;
      ItemColumns items;
      for (const PrivacyList& list : before.lists) {
        if (!find(after, list.name)) removed.push_back(list.name);
      }
      for (const PrivacyList& list : after.lists) {
        const PrivacyList* old = find(before, list.name);
        if (!old) {
          created.push_back(list.name);
          items.add(list);
        } else if (old->items != list.items) {
          replaced.push_back(list.name);
          items.add(list);
        }
      }
      const bool default_changed = before.default_name != after.default_name;

      if (!removed.empty()) {  // their items go by cascade
        std::string names = pg::encode_text_array(removed);
        co_await c.query(
            "DELETE FROM privacy_lists WHERE domain = $1 AND username = $2 "
            "AND name = ANY ($3::text[])",
            pg::params(domain, username, names));
      }
      if (default_changed && !before.default_name.empty() && find(after, before.default_name)) {
        // First, for the one-default unique index.
        co_await c.query(
            "UPDATE privacy_lists SET is_default = false "
            "WHERE domain = $1 AND username = $2 AND is_default",
            pg::params(domain, username));
      }
      if (!replaced.empty()) {
        std::string names = pg::encode_text_array(replaced);
        co_await c.query(
            "DELETE FROM privacy_items WHERE domain = $1 AND username = $2 "
            "AND name = ANY ($3::text[])",
            pg::params(domain, username, names));
      }
      if (!created.empty()) {
        std::string names = pg::encode_text_array(created);
        co_await c.query(
            "INSERT INTO privacy_lists (domain, username, name) "
            "SELECT $1, $2, n FROM unnest($3::text[]) AS n",
            pg::params(domain, username, names));
      }
      if (!items.names.empty()) {
        std::vector<pg::Param> params = pg::params(
            domain, username, pg::encode_text_array(items.names), number_array(items.orders),
            pg::encode_text_array(items.types), pg::encode_text_array(items.values),
            pg::encode_text_array(items.actions), number_array(items.kinds));
        co_await c.query(
            "INSERT INTO privacy_items (domain, username, name, ord, type, value, action, kinds) "
            "SELECT $1, $2, n, o, NULLIF(t, ''), v, a, k FROM unnest($3::text[], "
            "$4::bigint[], $5::text[], $6::text[], $7::text[], $8::smallint[]) "
            "AS u (n, o, t, v, a, k)",
            std::move(params));
      }
      if (default_changed && !after.default_name.empty()) {
        co_await c.query(
            "UPDATE privacy_lists SET is_default = true "
            "WHERE domain = $1 AND username = $2 AND name = $3",
            pg::params(domain, username, after.default_name));
      }
      result.emplace(std::move(before), std::move(*next));
    });
    co_return result;
  }

 private:
  pg::Pool& pool_;
};

}  // namespace

std::unique_ptr<PrivacyStore> pg::make_privacy_store(pg::Pool& pool) {
  return std::make_unique<PgPrivacyStore>(pool);
}

}  // namespace herald::storage
