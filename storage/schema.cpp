#include "storage/schema.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace herald::storage {

std::string label(int version, std::string_view name) {
  char number[16];
  std::snprintf(number, sizeof number, "%04d", version);
  return std::string(number) + "_" + std::string(name);
}

std::optional<std::string> validate(std::span<const Migration> list) {
  int expected = 1;
  for (const Migration& m : list) {
    if (m.version != expected) {
      return "migration " + label(m) + " should have version " + std::to_string(expected) +
             ": versions start at 1 and go up by one";
    }
    ++expected;
    if (m.name.empty()) return "migration " + label(m) + " has no name";
    if (m.sql.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return "migration " + label(m) + " is empty";
    }
    bool hex = m.checksum.size() == 64 &&
               std::all_of(m.checksum.begin(), m.checksum.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (!hex) return "migration " + label(m) + " has a malformed checksum";
  }
  return std::nullopt;
}

std::string_view to_string(MigrationState state) {
  switch (state) {
    case MigrationState::applied: return "applied";
    case MigrationState::pending: return "pending";
    case MigrationState::checksum_mismatch: return "checksum mismatch";
    case MigrationState::unknown: return "unknown to this build";
  }
  return "?";
}

std::size_t SchemaStatus::count(MigrationState state) const {
  return static_cast<std::size_t>(
      std::count_if(migrations.begin(), migrations.end(),
                    [state](const MigrationStatus& m) { return m.state == state; }));
}

SchemaStatus compare(std::span<const Migration> known, std::span<const AppliedMigration> applied) {
  std::map<int, MigrationStatus> by_version;
  SchemaStatus status;
  for (const Migration& m : known) {
    by_version[m.version] = {m.version, std::string(m.name), MigrationState::pending, {}};
    status.required_version = std::max(status.required_version, m.version);
  }
  for (const AppliedMigration& row : applied) {
    status.database_version = std::max(status.database_version, row.version);
    auto it = std::find_if(known.begin(), known.end(),
                           [&](const Migration& m) { return m.version == row.version; });
    MigrationStatus& entry = by_version[row.version];
    entry.version = row.version;
    entry.applied_at = row.applied_at;
    if (it == known.end()) {
      entry.name = row.name;
      entry.state = MigrationState::unknown;
    } else {
      entry.state = it->checksum == row.checksum ? MigrationState::applied
                                                 : MigrationState::checksum_mismatch;
    }
  }
  for (auto& [version, entry] : by_version) status.migrations.push_back(std::move(entry));
  return status;
}

SchemaCheck evaluate(const SchemaStatus& status, std::string_view config_path) {
  std::string migrate_command = "heraldctl ";
  if (!config_path.empty()) migrate_command += "--config " + std::string(config_path) + " ";
  migrate_command += "migrate";

  // Most specific first: a mismatch or a newer database cannot be fixed by migrating.
  for (const MigrationStatus& m : status.migrations) {
    if (m.state == MigrationState::checksum_mismatch) {
      return {false, "checksum of migration " + m.label() +
                         " differs from this build: the database was migrated by a different "
                         "Herald build; run the Herald release that migrated it, or restore a "
                         "database made by this one"};
    }
  }
  std::vector<std::string> unknown, pending;
  for (const MigrationStatus& m : status.migrations) {
    if (m.state == MigrationState::unknown) unknown.push_back(m.label());
    if (m.state == MigrationState::pending) pending.push_back(m.label());
  }
  auto join = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  };
  if (!unknown.empty()) {
    return {false, "database schema is at version " + std::to_string(status.database_version) +
                       " but this Herald only knows up to " +
                       std::to_string(status.required_version) + " (unknown: " + join(unknown) +
                       "): the database is newer than this build; upgrade Herald"};
  }
  if (!pending.empty()) {
    return {false, "database schema is at version " + std::to_string(status.database_version) +
                       " but this Herald needs " + std::to_string(status.required_version) +
                       " (pending: " + join(pending) + "): run `" + migrate_command + "`"};
  }
  return {true, {}};
}

}  // namespace herald::storage
