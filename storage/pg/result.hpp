// One query's result: owns the PGresult and reads values in libpq's text format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_result;

namespace herald::storage::pg {

class Result {
 public:
  Result() = default;
  explicit Result(pg_result* result) noexcept : result_(result) {}
  ~Result();
  Result(Result&& other) noexcept;
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const noexcept;
  int cols() const noexcept;
  // Column index by name; throws storage::Error if absent (a typo in our own SQL).
  int column(std::string_view name) const;
  // Rows touched by INSERT/UPDATE/DELETE (PQcmdTuples), 0 for other statements.
  std::uint64_t affected() const noexcept;

  bool is_null(int row, int col) const noexcept;
  // Text form of a value; empty for NULL. The view lives as long as this Result.
  std::string_view text(int row, int col) const noexcept;
  // Throws storage::Error if the value is NULL or not an integer.
  std::int64_t integer(int row, int col) const;
  // Raw bytes of a bytea column; throws storage::Error if NULL or malformed.
  std::string bytea(int row, int col) const;

 private:
  pg_result* result_ = nullptr;
};

// Decodes PostgreSQL's text representation of bytea: the hex format ("\x0a1b") that
// servers send by default, and the legacy escape format (bytea_output = 'escape') in
// case an operator set it. Nullopt if the text is not valid in either format.
std::optional<std::string> decode_bytea(std::string_view text);

// PostgreSQL's text representation of a one-dimensional text[] without NULL elements
// ({a,"b c",""}), as array_agg(...) sends it. Nullopt if malformed, multi-dimensional,
// or holding a NULL.
std::optional<std::vector<std::string>> decode_text_array(std::string_view text);
// A text[] literal for a parameter ("$1::text[]"): every element quoted and escaped.
std::string encode_text_array(const std::vector<std::string>& elements);

}  // namespace herald::storage::pg
