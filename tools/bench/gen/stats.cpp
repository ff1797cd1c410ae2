#include "tools/bench/gen/stats.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

namespace herald::bench {

// --- Samples ----------------------------------------------------------------------------

void Samples::sort() {
  if (!sorted_) std::sort(values_.begin(), values_.end());
  sorted_ = true;
}

double Samples::percentile(double p) {
  if (values_.empty()) return std::numeric_limits<double>::quiet_NaN();
  sort();
  // Nearest rank: the smallest value with at least p% of the samples at or below it.
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values_.size()));
  const std::size_t index = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
  return values_[std::min(index, values_.size() - 1)];
}

double Samples::max() {
  if (values_.empty()) return std::numeric_limits<double>::quiet_NaN();
  sort();
  return values_.back();
}

double Samples::mean() const {
  if (values_.empty()) return std::numeric_limits<double>::quiet_NaN();
  return std::accumulate(values_.begin(), values_.end(), 0.0) / static_cast<double>(values_.size());
}

Json Samples::summary(const std::vector<double>& percentiles, int decimals) {
  Json j = Json::object();
  for (double p : percentiles) {
    // "p50", "p99", "p99.9"
    j[fmt::format("p{}", p)] = round_to(percentile(p), decimals);
  }
  j["max"] = round_to(max(), decimals);
  j["mean"] = round_to(mean(), decimals);
  j["count"] = values_.size();
  return j;
}

LogHistogram LogHistogram::of(const std::vector<double>& values) {
  LogHistogram h;
  if (values.empty()) return h;
  const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  // Buckets of 10 per decade, from the decade below the smallest value to past the
  // largest; bounds are 10^(k/10), so every run's buckets line up.
  const double floor_v = std::max(*lo_it, 1e-6);
  const int first = static_cast<int>(std::floor(std::log10(floor_v) * 10));
  const int last = static_cast<int>(std::ceil(std::log10(std::max(*hi_it, floor_v)) * 10)) + 1;
  for (int k = first; k <= last; ++k) {
    h.lower.push_back(std::pow(10.0, (k - 1) / 10.0));
    h.upper.push_back(std::pow(10.0, k / 10.0));
  }
  h.count.assign(h.upper.size(), 0);
  for (double v : values) {
    auto it = std::lower_bound(h.upper.begin(), h.upper.end(), v);
    if (it == h.upper.end()) --it;
    ++h.count[static_cast<std::size_t>(it - h.upper.begin())];
  }
  return h;
}

// --- Errors -----------------------------------------------------------------------------

namespace {
constexpr std::size_t kExamplesPerKind = 5;
}

void Errors::add(const std::string& kind, const std::string& text) {
  auto& k = kinds_[kind];
  ++k.count;
  ++total_;
  if (k.examples.size() < kExamplesPerKind) k.examples.push_back(text);
}

std::size_t Errors::count(const std::string& kind) const {
  auto it = kinds_.find(kind);
  return it == kinds_.end() ? 0 : it->second.count;
}

Json Errors::to_json() const {
  Json j = Json::object();
  j["total"] = total_;
  Json kinds = Json::object();
  for (const auto& [name, k] : kinds_) {
    Json e = Json::object();
    e["count"] = k.count;
    e["examples"] = Json::array_of(k.examples);
    kinds[name] = std::move(e);
  }
  j["by_kind"] = std::move(kinds);
  return j;
}

std::string Errors::brief() const {
  std::string out;
  for (const auto& [name, k] : kinds_) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", k.count, name);
    if (!k.examples.empty()) out += fmt::format(" (first: {})", k.examples.front());
  }
  return out;
}

// --- process readings -------------------------------------------------------------------

double own_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

std::uint64_t own_max_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

std::optional<double> process_cpu_seconds(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may contain spaces: count fields
  // from the last ')'. After it come state (field 3) ... utime (14), stime (15).
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(paren + 1));
  std::vector<std::string> f;
  std::string tok;
  while (fields >> tok && f.size() < 13) f.push_back(tok);
  if (f.size() < 13) return std::nullopt;
  try {
    const double ticks = static_cast<double>(std::stoull(f[11]) + std::stoull(f[12]));
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::uint64_t> process_rss_bytes(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream s(line.substr(6));
      std::uint64_t kb = 0;
      if (s >> kb) return kb * 1024;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// --- Meter ------------------------------------------------------------------------------

void Meter::begin(std::string name) {
  end();
  open_ = true;
  name_ = std::move(name);
  wall0_ = Clock::now();
  cpu0_ = own_cpu_seconds();
  server0_ = process_cpu_seconds(server_pid_);
}

void Meter::end() {
  if (!open_) return;
  open_ = false;
  Phase p;
  p.name = name_;
  p.wall = std::chrono::duration<double>(Clock::now() - wall0_).count();
  p.cpu = own_cpu_seconds() - cpu0_;
  auto server1 = process_cpu_seconds(server_pid_);
  if (server0_ && server1) p.server_cpu = *server1 - *server0_;
  phases_.push_back(std::move(p));
}

Json Meter::phase_json(const Phase& p, bool server) const {
  Json j = Json::object();
  j["phase"] = p.name;
  j["wall_seconds"] = round_to(p.wall, 3);
  if (server) {
    j["cpu_seconds"] = p.server_cpu ? Json(round_to(*p.server_cpu, 3)) : Json();
    // Can exceed 1 for a multi-threaded server: cores' worth of CPU.
    j["cpu_busy"] = p.server_cpu && p.wall > 0 ? Json(round_to(*p.server_cpu / p.wall, 3)) : Json();
  } else {
    j["cpu_seconds"] = round_to(p.cpu, 3);
    j["cpu_busy"] = p.wall > 0 ? round_to(p.cpu / p.wall, 3) : 0.0;
  }
  return j;
}

Json Meter::last() const {
  Json j = Json::object();
  if (phases_.empty()) return j;
  const auto& p = phases_.back();
  j["wall_seconds"] = round_to(p.wall, 3);
  j["generator_cpu_busy"] = p.wall > 0 ? round_to(p.cpu / p.wall, 3) : 0.0;
  j["server_cpu_busy"] = p.server_cpu && p.wall > 0 ? Json(round_to(*p.server_cpu / p.wall, 3)) : Json();
  return j;
}

double Meter::last_generator_busy() const {
  if (phases_.empty() || phases_.back().wall <= 0) return 0;
  return phases_.back().cpu / phases_.back().wall;
}

Json Meter::generator_json() const {
  double wall = 0, cpu = 0;
  Json phases = Json::array();
  for (const auto& p : phases_) {
    wall += p.wall;
    cpu += p.cpu;
    phases.push(phase_json(p, false));
  }
  Json j = Json::object();
  j["cpu_seconds"] = round_to(cpu, 3);
  j["wall_seconds"] = round_to(wall, 3);
  // Near 1.0 means the generator's one thread was saturated: the figures may then
  // describe the generator rather than the server.
  j["generator_cpu_busy"] = wall > 0 ? round_to(cpu / wall, 3) : 0.0;
  // About 100 KiB per TLS connection (Asio's TLS buffers dominate).
  j["max_rss_bytes"] = own_max_rss_bytes();
  j["phases"] = std::move(phases);
  return j;
}

Json Meter::server_json() const {
  Json j = Json::object();
  j["pid"] = server_pid_ > 0 ? Json(server_pid_) : Json();
  if (server_pid_ <= 0) return j;
  double cpu = 0, wall = 0;
  bool complete = true;
  Json phases = Json::array();
  for (const auto& p : phases_) {
    wall += p.wall;
    if (p.server_cpu) {
      cpu += *p.server_cpu;
    } else {
      complete = false;
    }
    phases.push(phase_json(p, true));
  }
  j["cpu_seconds"] = complete ? Json(round_to(cpu, 3)) : Json();
  j["cpu_busy"] = complete && wall > 0 ? Json(round_to(cpu / wall, 3)) : Json();
  auto rss = process_rss_bytes(server_pid_);
  j["rss_bytes_at_end"] = rss ? Json(*rss) : Json();
  j["phases"] = std::move(phases);
  return j;
}

}  // namespace herald::bench
