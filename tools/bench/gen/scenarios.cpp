#include "tools/bench/gen/scenarios.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>

namespace herald::bench {

void validate_scenario(const Options& o) {
  const std::string& s = o.scenario();
  auto positive = [&o](std::string_view name) {
    if (o.integer(name) <= 0) throw UsageError(fmt::format("--{} must be at least 1", name));
  };
  auto positive_number = [&o](std::string_view name) {
    if (o.number(name) <= 0) throw UsageError(fmt::format("--{} must be more than 0", name));
  };
  positive_number("timeout");
  if (s != "roster") {
    positive("concurrency");
    if (o.integer("first") < 0) throw UsageError("--first must not be negative");
  }
  if (s == "login" || s == "idle") positive("clients");
  if (s == "idle") {
    if (o.integer("server-pid") <= 0) {
      throw UsageError("idle measures the server's memory: give its process id with --server-pid");
    }
    const auto steps = o.integers("steps");
    for (std::size_t i = 1; i < steps.size(); ++i) {
      if (steps[i] <= steps[i - 1]) throw UsageError("--steps must be increasing client counts, e.g. 1000,5000,10000");
    }
    if (o.number("settle") < 0) throw UsageError("--settle must not be negative");
  }
  if (s == "messages") {
    positive("pairs");
    if (o.integer("body-bytes") < 0) throw UsageError("--body-bytes must not be negative");
    positive_number("rate");
    positive_number("duration");
    positive_number("start");
    positive_number("step-duration");
    positive_number("p99-ms");
    positive_number("max-rate");
    if (o.number("warmup-seconds") < 0) throw UsageError("--warmup-seconds must not be negative");
    if (o.integer("bisect") < 0) throw UsageError("--bisect must not be negative");
  }
  if (o.text("tls") == "floor" && s != "messages") {
    throw UsageError("--tls floor carries no XMPP: only the messages scenario can use it");
  }
  if (s == "fanout") {
    if (o.text("owner").empty()) throw UsageError("fanout needs --owner NAME (the user whose presence goes out)");
    positive("contacts");
    positive("rounds");
  }
  if (s == "roster") {
    if (o.text("user").empty()) throw UsageError("roster needs --user NAME");
    if (o.integer("expect") < 0) throw UsageError("roster needs --expect N, the number of items the roster holds");
    positive("rounds");
  }
}

std::size_t connections_needed(const Options& o) {
  const std::string& s = o.scenario();
  if (s == "login") return static_cast<std::size_t>(o.integer("clients"));
  if (s == "idle") {
    const auto steps = o.integers("steps");
    return static_cast<std::size_t>(steps.empty() ? o.integer("clients") : steps.back());
  }
  if (s == "messages") return static_cast<std::size_t>(2 * o.integer("pairs"));
  if (s == "fanout") return static_cast<std::size_t>(o.integer("contacts") + 1);
  return 1;
}

awaitable<void> run_scenario(Run& run) {
  const std::string& s = run.options.scenario();
  if (s == "login") {
    co_await run_login(run);
  } else if (s == "idle") {
    co_await run_idle(run);
  } else if (s == "messages") {
    co_await run_messages(run);
  } else if (s == "fanout") {
    co_await run_fanout(run);
  } else {
    co_await run_roster(run);
  }
}

std::chrono::milliseconds step_timeout(const Options& o) {
  return std::chrono::milliseconds(static_cast<long long>(std::llround(o.number("timeout") * 1000)));
}

Client::EndHandler count_disconnects(Run& run) {
  return [&run](Client& c, const std::string& why) { run.errors.add("disconnected", fmt::format("{}: {}", c.user(), why)); };
}

double median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void progress(const std::string& line) { std::cerr << line << std::endl; }

}  // namespace herald::bench
