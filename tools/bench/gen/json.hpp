// A small JSON value for herald-bench's reports: built once at the end of a run and
// written out, so it favours a simple interface over speed. Objects keep their keys in
// insertion order, which keeps the report readable (params before results, ...).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::bench {

class Json {
 public:
  enum class Kind { null, boolean, integer, number, string, array, object };

  Json() = default;  // null
  Json(bool b) : kind_(Kind::boolean), bool_(b) {}
  Json(int v) : kind_(Kind::integer), int_(v) {}
  Json(long v) : kind_(Kind::integer), int_(v) {}
  Json(long long v) : kind_(Kind::integer), int_(v) {}
  Json(unsigned v) : kind_(Kind::integer), int_(v) {}
  Json(unsigned long v) : kind_(Kind::integer), int_(static_cast<std::int64_t>(v)) {}
  Json(unsigned long long v) : kind_(Kind::integer), int_(static_cast<std::int64_t>(v)) {}
  Json(double v) : kind_(Kind::number), number_(v) {}
  Json(std::string s) : kind_(Kind::string), string_(std::move(s)) {}
  Json(std::string_view s) : kind_(Kind::string), string_(s) {}
  Json(const char* s) : kind_(Kind::string), string_(s) {}

  static Json object();
  static Json array();
  template <class T>
  static Json array_of(const std::vector<T>& values) {
    Json a = array();
    for (const auto& v : values) a.push(Json(v));
    return a;
  }

  Kind kind() const { return kind_; }
  // Object member, created (null) if absent; turns a null value into an object.
  Json& operator[](std::string_view key);
  // Appends to an array; turns a null value into an array.
  void push(Json value);
  std::size_t size() const { return values_.size(); }

  // Pretty-printed with two-space indentation; doubles that are not finite become null.
  std::string dump() const;

 private:
  void dump_to(std::string& out, int indent) const;

  Kind kind_ = Kind::null;
  bool bool_ = false;
  std::int64_t int_ = 0;
  double number_ = 0;
  std::string string_;
  std::vector<std::string> keys_;  // objects: keys_[i] names values_[i]
  std::vector<Json> values_;       // arrays and objects
};

// A double rounded to `decimals` places, for figures where more digits are noise
// (milliseconds to the microsecond, rates to the unit...).
double round_to(double value, int decimals);

}  // namespace herald::bench
