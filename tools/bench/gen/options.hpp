// herald-bench's command line: one table of options, each valid for some scenarios,
// from which both the parser and the --help texts are made.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench/gen/json.hpp"

namespace herald::bench {

// A mistake on the command line: exit status 2, the message says what to do.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --help was asked for: `text` is what to print (exit status 0).
struct HelpRequested {
  std::string text;
};

class Options {
 public:
  // Throws UsageError or HelpRequested.
  static Options parse(const std::vector<std::string>& args);

  const std::string& scenario() const { return scenario_; }
  bool given(std::string_view name) const;  // on the command line, not a default
  bool flag(std::string_view name) const;
  long long integer(std::string_view name) const;
  double number(std::string_view name) const;
  const std::string& text(std::string_view name) const;
  // A comma-separated list of positive integers (--steps); empty if the value is empty.
  std::vector<long long> integers(std::string_view name) const;

  // Every option of this scenario with its value, typed: the report's "params".
  Json params() const;

  static std::string main_help();
  static std::string scenario_help(std::string_view scenario);  // empty if unknown

 private:
  std::string scenario_;
  std::map<std::string, std::string, std::less<>> values_;  // every option of the scenario
  std::map<std::string, bool, std::less<>> given_;
};

}  // namespace herald::bench
