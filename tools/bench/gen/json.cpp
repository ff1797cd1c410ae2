#include "tools/bench/gen/json.hpp"

#include <fmt/format.h>

#include <cmath>

namespace herald::bench {

Json Json::object() {
  Json j;
  j.kind_ = Kind::object;
  return j;
}

Json Json::array() {
  Json j;
  j.kind_ = Kind::array;
  return j;
}

Json& Json::operator[](std::string_view key) {
  if (kind_ == Kind::null) kind_ = Kind::object;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return values_[i];
  }
  keys_.emplace_back(key);
  values_.emplace_back();
  return values_.back();
}

void Json::push(Json value) {
  if (kind_ == Kind::null) kind_ = Kind::array;
  values_.push_back(std::move(value));
}

std::string Json::dump() const {
  std::string out;
  dump_to(out, 0);
  out += '\n';
  return out;
}

namespace {

void quote(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;  // UTF-8 passes through unchanged
        }
    }
  }
  out += '"';
}

}  // namespace

void Json::dump_to(std::string& out, int indent) const {
  const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
  switch (kind_) {
    case Kind::null: out += "null"; break;
    case Kind::boolean: out += bool_ ? "true" : "false"; break;
    case Kind::integer: out += fmt::format("{}", int_); break;
    case Kind::number:
      if (std::isfinite(number_)) {
        out += fmt::format("{}", number_);
      } else {
        out += "null";
      }
      break;
    case Kind::string: quote(out, string_); break;
    case Kind::array: {
      // Arrays of plain values (chart series) stay on one line: a report with a few
      // thousand samples would otherwise be thousands of lines long.
      bool flat = true;
      for (const auto& v : values_) flat = flat && v.kind_ != Kind::array && v.kind_ != Kind::object;
      if (values_.empty()) {
        out += "[]";
      } else if (flat) {
        out += '[';
        for (std::size_t i = 0; i < values_.size(); ++i) {
          if (i) out += ", ";
          values_[i].dump_to(out, indent);
        }
        out += ']';
      } else {
        out += "[\n";
        for (std::size_t i = 0; i < values_.size(); ++i) {
          out += pad;
          values_[i].dump_to(out, indent + 2);
          out += i + 1 < values_.size() ? ",\n" : "\n";
        }
        out.append(static_cast<std::size_t>(indent), ' ');
        out += ']';
      }
      break;
    }
    case Kind::object: {
      if (values_.empty()) {
        out += "{}";
        break;
      }
      out += "{\n";
      for (std::size_t i = 0; i < values_.size(); ++i) {
        out += pad;
        quote(out, keys_[i]);
        out += ": ";
        values_[i].dump_to(out, indent + 2);
        out += i + 1 < values_.size() ? ",\n" : "\n";
      }
      out.append(static_cast<std::size_t>(indent), ' ');
      out += '}';
      break;
    }
  }
}

double round_to(double value, int decimals) {
  if (!std::isfinite(value)) return value;
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace herald::bench
