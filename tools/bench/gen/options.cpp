#include "tools/bench/gen/options.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <optional>

namespace herald::bench {
namespace {

enum : unsigned { kLogin = 1, kIdle = 2, kMessages = 4, kFanout = 8, kRoster = 16, kAll = 31 };
enum class Type { flag, integer, number, text };
enum class Group { connection, run, scenario };

struct Spec {
  std::string_view name;
  Type type;
  std::string_view value_name;  // as shown in --help; empty for flags
  std::string_view fallback;    // default value; "" = none (required where the scenario says so)
  unsigned scenarios;
  Group group;
  std::string_view help;
};

// clang-format off
constexpr Spec kSpecs[] = {
  // Connection: how each client reaches and logs in to the server.
  {"host", Type::text, "ADDR", "127.0.0.1", kAll, Group::connection, "server address or name"},
  {"port", Type::integer, "N", "5222", kAll, Group::connection, "server port"},
  {"domain", Type::text, "NAME", "localhost", kAll, Group::connection, "XMPP domain of the accounts; also the TLS SNI name"},
  {"password", Type::text, "TEXT", "bench", kAll, Group::connection, "password of every account"},
  {"tls", Type::text, "MODE", "starttls", kAll, Group::connection,
   "starttls, direct (TLS from the first byte) or floor (the bench-floor relay; messages only)"},
  {"mech", Type::text, "NAME", "SCRAM-SHA-256", kAll, Group::connection, "SASL mechanism: PLAIN, SCRAM-SHA-1 or SCRAM-SHA-256"},
  {"sources", Type::text, "LIST", "127.0.0.1", kAll, Group::connection,
   "comma-separated local addresses (127.0.0.x) used round-robin as source addresses, for more than ~28,000 connections"},
  {"timeout", Type::number, "S", "30", kAll, Group::connection, "limit of each login and of each step of a scenario, seconds"},
  // Run: the process and its report.
  {"server-pid", Type::integer, "PID", "0", kAll, Group::run,
   "the server's process: its CPU time per phase and memory (VmRSS) are recorded (required by idle)"},
  {"out", Type::text, "DIR", "", kAll, Group::run, "write DIR/SCENARIO.json and, with gnuplot, DIR/SCENARIO.png"},
  {"label", Type::text, "TEXT", "", kAll, Group::run, "name of the run in the report, e.g. the server's"},
  {"cpu", Type::integer, "N", "-1", kAll, Group::run, "pin this process to CPU N"},
  // Clients.
  {"clients", Type::integer, "N", "100", kLogin | kIdle, Group::scenario, "number of clients"},
  {"prefix", Type::text, "TEXT", "u", kLogin | kIdle | kMessages | kFanout, Group::scenario,
   "user names are PREFIX<number>@DOMAIN"},
  {"first", Type::integer, "K", "1", kLogin | kIdle | kMessages | kFanout, Group::scenario,
   "number of the first user"},
  {"concurrency", Type::integer, "C", "100", kLogin | kIdle | kMessages | kFanout, Group::scenario,
   "logins in flight at once"},
  // login
  {"warmup", Type::flag, "", "", kLogin, Group::scenario,
   "log every client in and out once before the measured pass (fills the client's SCRAM cache; not measured)"},
  // idle
  {"steps", Type::text, "LIST", "", kIdle, Group::scenario,
   "cumulative client counts at which memory is read, e.g. 1000,10000 (default: just --clients)"},
  {"settle", Type::number, "S", "5", kIdle, Group::scenario, "wait after each step before reading memory, seconds"},
  // messages
  {"pairs", Type::integer, "P", "50", kMessages, Group::scenario,
   "users 1..P send, P+1..2P receive; sender k sends to receiver P+k"},
  {"body-bytes", Type::integer, "N", "100", kMessages, Group::scenario, "size of each message body"},
  {"rate", Type::number, "R", "1000", kMessages, Group::scenario, "messages per second, all senders together"},
  {"duration", Type::number, "S", "10", kMessages, Group::scenario, "measured time at --rate, seconds"},
  {"warmup-seconds", Type::number, "S", "1", kMessages, Group::scenario,
   "unmeasured sending before each measured run or step, seconds"},
  {"find-max", Type::flag, "", "", kMessages, Group::scenario,
   "instead of one rate: raise the rate x1.5 per step until a step fails (twice in a row: a failing step is retried once), then bisect; reports the highest passing rate"},
  {"start", Type::number, "R", "2000", kMessages, Group::scenario, "--find-max: rate of the first step"},
  {"step-duration", Type::number, "S", "5", kMessages, Group::scenario, "--find-max: measured time of each step, seconds"},
  {"p99-ms", Type::number, "MS", "50", kMessages, Group::scenario, "--find-max: a step fails when its p99 latency reaches this"},
  {"bisect", Type::integer, "N", "4", kMessages, Group::scenario, "--find-max: bisection steps after the first failure"},
  {"max-rate", Type::number, "R", "2000000", kMessages, Group::scenario, "--find-max: stop raising the rate here"},
  // fanout
  {"owner", Type::text, "NAME", "", kFanout, Group::scenario, "the user whose presence goes out (required)"},
  {"contacts", Type::integer, "K", "100", kFanout, Group::scenario, "the owner's contacts: PREFIX<first>..PREFIX<first+K-1>"},
  // fanout, roster
  {"rounds", Type::integer, "R", "5", kFanout | kRoster, Group::scenario, "number of measured rounds"},
  // roster
  {"user", Type::text, "NAME", "", kRoster, Group::scenario, "the user whose roster is fetched (required)"},
  {"expect", Type::integer, "N", "-1", kRoster, Group::scenario,
   "number of roster items expected (required); a different count is an error"},
};
// clang-format on

struct ScenarioInfo {
  std::string_view name;
  unsigned bit;
  std::string_view summary;
  std::string_view description;
};

constexpr ScenarioInfo kScenarios[] = {
    {"login", kLogin, "log in N clients, C at a time: logins per second and login latency",
     "Logs in --clients clients with at most --concurrency logins in flight. A login ends when the initial presence has been written after resource binding. Reports the duration, logins per second, latency percentiles and established clients over time; then closes every stream."},
    {"idle", kIdle, "server memory per idle session at increasing client counts",
     "Reads the server's resident memory (needs --server-pid) with no client connected, then logs in clients up to each --steps count, waits --settle seconds and reads it again. Reports bytes per session overall and between steps. Every connection stays open (answering pings) until the end."},
    {"messages", kMessages, "chat messages between pairs: latency at a rate, or the highest rate",
     "Senders send chat messages to their receiver's full JID at an aggregate rate, paced by a 1 ms tick. Latency runs from each message's intended send time (no coordinated omission) to its parsing by the receiver. With --rate: one measured run of --duration seconds. With --find-max: steps of rising rate until p99 reaches --p99-ms, fewer than 99.9% arrive, or the server stops reading; then bisection. Works with --tls floor."},
    {"fanout", kFanout, "one owner's presence change reaching K contacts",
     "Logs in the contacts, then the owner (the caller provisions mutual subscriptions), and measures how long until every contact has the owner's presence: once for the initial presence, then for each of --rounds status changes."},
    {"roster", kRoster, "roster retrieval of one account with many items",
     "Each round logs the user in without presence, fetches the roster and measures the time until the whole result has been received; counts its items against --expect; then closes the stream."},
};

const ScenarioInfo* find_scenario(std::string_view name) {
  for (const auto& s : kScenarios) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Spec* find_spec(std::string_view name) {
  for (const auto& s : kSpecs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool parse_int(std::string_view text, long long& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  try {
    std::size_t used = 0;
    out = std::stod(text, &used);
    return used == text.size() && std::isfinite(out);
  } catch (const std::exception&) {
    return false;
  }
}

void check_value(const Spec& spec, const std::string& value) {
  long long i = 0;
  double d = 0;
  if (spec.type == Type::integer && !parse_int(value, i)) {
    throw UsageError(fmt::format("--{} needs an integer, not '{}'", spec.name, value));
  }
  if (spec.type == Type::number && !parse_double(value, d)) {
    throw UsageError(fmt::format("--{} needs a number, not '{}'", spec.name, value));
  }
}

constexpr std::size_t kHelpIndent = 24;     // where option descriptions start
constexpr std::size_t kHelpWidth = 80 - 24;  // and how wide they may be

// Word-wraps `text` to `width` columns; continuation lines start with `indent` spaces.
std::string wrap(const std::string& text, std::size_t indent, std::size_t width) {
  std::string out;
  std::size_t column = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    auto space = text.find(' ', pos);
    if (space == std::string::npos) space = text.size();
    const std::string word = text.substr(pos, space - pos);
    if (column > 0 && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = 0;
    } else if (column > 0) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    pos = space + 1;
  }
  return out;
}

void append_options(std::string& out, unsigned bit, Group group, std::string_view title) {
  std::string block;
  for (const auto& s : kSpecs) {
    if (!(s.scenarios & bit) || s.group != group) continue;
    std::string left = fmt::format("  --{}{}{}", s.name, s.value_name.empty() ? "" : " ", s.value_name);
    std::string help(s.help);
    if (!s.fallback.empty() && s.type != Type::flag && s.fallback != "-1" &&
        !(s.name == "server-pid" && s.fallback == "0")) {
      help += fmt::format(" (default {})", s.fallback);
    }
    const std::string wrapped = wrap(help, kHelpIndent, kHelpWidth);
    if (left.size() < kHelpIndent) {
      block += fmt::format("{:<{}}{}\n", left, kHelpIndent, wrapped);
    } else {
      block += fmt::format("{}\n{:{}}{}\n", left, "", kHelpIndent, wrapped);
    }
  }
  if (!block.empty()) out += fmt::format("\n{}:\n{}", title, block);
}

}  // namespace

Options Options::parse(const std::vector<std::string>& args) {
  Options o;
  if (args.empty()) throw UsageError("no scenario given; see herald-bench --help");
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") throw HelpRequested{main_help()};
  const ScenarioInfo* scenario = find_scenario(args[0]);
  if (!scenario) {
    throw UsageError(fmt::format("unknown scenario '{}'; choose login, idle, messages, fanout or roster", args[0]));
  }
  o.scenario_ = args[0];
  for (const auto& s : kSpecs) {
    if (s.scenarios & scenario->bit) o.values_[std::string(s.name)] = std::string(s.fallback);
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") throw HelpRequested{scenario_help(o.scenario_)};
    if (arg.rfind("--", 0) != 0) {
      throw UsageError(fmt::format("unexpected argument '{}'; options start with --", arg));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const Spec* spec = find_spec(name);
    if (!spec) throw UsageError(fmt::format("unknown option --{}; see herald-bench {} --help", name, o.scenario_));
    if (!(spec->scenarios & scenario->bit)) {
      throw UsageError(fmt::format("--{} does not apply to {}; see herald-bench {} --help", name, o.scenario_,
                                   o.scenario_));
    }
    if (spec->type == Type::flag) {
      if (value) throw UsageError(fmt::format("--{} takes no value", name));
      value = "1";
    } else if (!value) {
      if (i + 1 >= args.size()) throw UsageError(fmt::format("--{} needs a value ({})", name, spec->value_name));
      value = args[++i];
    }
    check_value(*spec, *value);
    o.values_[name] = *value;
    o.given_[name] = true;
  }
  return o;
}

bool Options::given(std::string_view name) const { return given_.count(name) > 0; }

bool Options::flag(std::string_view name) const { return text(name) == "1"; }

long long Options::integer(std::string_view name) const {
  long long v = 0;
  parse_int(text(name), v);  // checked when parsed
  return v;
}

double Options::number(std::string_view name) const {
  double v = 0;
  parse_double(text(name), v);
  return v;
}

const std::string& Options::text(std::string_view name) const {
  auto it = values_.find(name);
  // Asking for an option the scenario does not have is a bug in herald-bench.
  if (it == values_.end()) throw std::logic_error(fmt::format("option --{} not defined for {}", name, scenario_));
  return it->second;
}

std::vector<long long> Options::integers(std::string_view name) const {
  std::vector<long long> out;
  const std::string& list = text(name);
  std::size_t pos = 0;
  while (pos < list.size()) {
    auto comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    long long v = 0;
    if (!parse_int(std::string_view(list).substr(pos, comma - pos), v) || v <= 0) {
      throw UsageError(fmt::format("--{} needs comma-separated positive integers, not '{}'", name, list));
    }
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

Json Options::params() const {
  Json j = Json::object();
  for (const auto& s : kSpecs) {
    auto it = values_.find(s.name);
    if (it == values_.end()) continue;
    switch (s.type) {
      case Type::flag: j[s.name] = it->second == "1"; break;
      case Type::integer: j[s.name] = integer(s.name); break;
      case Type::number: j[s.name] = number(s.name); break;
      case Type::text: j[s.name] = it->second; break;
    }
  }
  return j;
}

std::string Options::main_help() {
  std::string out = R"(Usage: herald-bench SCENARIO [OPTIONS]
       herald-bench SCENARIO --help

Load generator for XMPP servers (Herald, Prosody, ejabberd: standard XMPP only)
and the bench-floor TLS relay. One thread; pin it with taskset or --cpu.

Scenarios:
)";
  for (const auto& s : kScenarios) out += fmt::format("  {:<10}{}\n", s.name, s.summary);
  append_options(out, kAll, Group::connection, "Connection options (every scenario)");
  append_options(out, kAll, Group::run, "Run options (every scenario)");
  out += R"(
Every client logs in as PREFIX<n>@DOMAIN: TLS (no certificate verification),
SASL, resource 'bench', session if required, initial presence; then it answers
pings and keeps reading.

Exit status: 0 the scenario completed (its report says how well the server did),
1 it could not complete (failed logins, timeouts, invalid results), 2 usage error.
)";
  return out;
}

std::string Options::scenario_help(std::string_view name) {
  const ScenarioInfo* s = find_scenario(name);
  if (!s) return {};
  std::string out =
      fmt::format("Usage: herald-bench {} [OPTIONS]\n\n{}\n", s->name, wrap(std::string(s->description), 0, 80));
  append_options(out, s->bit, Group::scenario, fmt::format("{} options", s->name));
  append_options(out, s->bit, Group::connection, "Connection options");
  append_options(out, s->bit, Group::run, "Run options");
  return out;
}

}  // namespace herald::bench
