#include "storage/pg/result.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <string>
#include <utility>

#include "storage/stores.hpp"

namespace herald::storage::pg {

Result::~Result() {
  if (result_) PQclear(result_);
}

Result::Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (result_) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

int Result::rows() const noexcept { return result_ ? PQntuples(result_) : 0; }
int Result::cols() const noexcept { return result_ ? PQnfields(result_) : 0; }

int Result::column(std::string_view name) const {
  const std::string quoted = "\"" + std::string(name) + "\"";  // exact, case-sensitive match
  int index = result_ ? PQfnumber(result_, quoted.c_str()) : -1;
  if (index < 0) throw Error("query result has no column \"" + std::string(name) + "\"");
  return index;
}

std::uint64_t Result::affected() const noexcept {
  if (!result_) return 0;
  std::string_view text = PQcmdTuples(result_);
  std::uint64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

bool Result::is_null(int row, int col) const noexcept {
  return !result_ || PQgetisnull(result_, row, col) != 0;
}

std::string_view Result::text(int row, int col) const noexcept {
  if (is_null(row, col)) return {};
  return {PQgetvalue(result_, row, col), static_cast<std::size_t>(PQgetlength(result_, row, col))};
}

std::int64_t Result::integer(int row, int col) const {
  if (is_null(row, col)) throw Error("unexpected NULL in an integer column");
  std::string_view t = text(row, col);
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec != std::errc() || end != t.data() + t.size()) {
    throw Error("malformed integer from the database: " + std::string(t));
  }
  return value;
}

std::string Result::bytea(int row, int col) const {
  if (is_null(row, col)) throw Error("unexpected NULL in a bytea column");
  auto decoded = decode_bytea(text(row, col));
  if (!decoded) throw Error("malformed bytea value from the database");
  return std::move(*decoded);
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_octal(char c) { return c >= '0' && c <= '7'; }

}  // namespace

std::optional<std::string> decode_bytea(std::string_view text) {
  std::string out;
  if (text.size() >= 2 && text[0] == '\\' && text[1] == 'x') {
    std::string_view hex = text.substr(2);
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size();) {
      // The input syntax allows whitespace between byte pairs; the server never sends it,
      // but accepting it costs nothing.
      if (hex[i] == ' ' || hex[i] == '\n' || hex[i] == '\t' || hex[i] == '\r') {
        ++i;
        continue;
      }
      if (i + 1 >= hex.size()) return std::nullopt;
      int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    }
    return out;
  }
  // Escape format: printable bytes as themselves, "\\" for a backslash, "\ooo" octal.
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != '\\') {
      out.push_back(text[i++]);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '\\') {
      out.push_back('\\');
      i += 2;
      continue;
    }
    if (i + 3 < text.size() && is_octal(text[i + 1]) && is_octal(text[i + 2]) &&
        is_octal(text[i + 3])) {
      int value = (text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0');
      if (value > 0xff) return std::nullopt;
      out.push_back(static_cast<char>(value));
      i += 4;
      continue;
    }
    return std::nullopt;
  }
  return out;
}

std::optional<std::vector<std::string>> decode_text_array(std::string_view text) {
  // array_out: "{" elements "}" separated by ','; an element is quoted when empty, when
  // it contains {},"\ or whitespace, or when it reads NULL; inside quotes " and \ are
  // escaped with a backslash. A lower bound other than 1 is written as "[2:3]={...}".
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  std::vector<std::string> out;
  std::size_t i = 1;
  const std::size_t end = text.size() - 1;
  if (i == end) return out;
  while (true) {
    std::string element;
    if (i < end && text[i] == '"') {
      ++i;
      while (true) {
        if (i >= end) return std::nullopt;
        char c = text[i++];
        if (c == '"') break;
        if (c == '\\') {
          if (i >= end) return std::nullopt;
          c = text[i++];
        }
        element.push_back(c);
      }
    } else {
      std::size_t start = i;
      while (i < end && text[i] != ',') {
        char c = text[i];
        if (c == '{' || c == '}' || c == '"' || c == '\\') return std::nullopt;
        ++i;
      }
      element.assign(text.substr(start, i - start));
      if (element.empty()) return std::nullopt;
      if (element.size() == 4 && (element[0] == 'N' || element[0] == 'n') &&
          (element[1] == 'U' || element[1] == 'u') && (element[2] == 'L' || element[2] == 'l') &&
          (element[3] == 'L' || element[3] == 'l')) {
        return std::nullopt;  // SQL NULL
      }
    }
    out.push_back(std::move(element));
    if (i == end) return out;
    if (text[i] != ',') return std::nullopt;
    ++i;
  }
}

std::string encode_text_array(const std::vector<std::string>& elements) {
  std::string out = "{";
  for (std::size_t n = 0; n < elements.size(); ++n) {
    if (n) out.push_back(',');
    out.push_back('"');
    for (char c : elements[n]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace herald::storage::pg
