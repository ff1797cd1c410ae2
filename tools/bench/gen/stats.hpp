// Measurement helpers: the clock, exact percentiles, log-bucket histograms, the error
// tally, CPU and memory readings of this process and of the server under test, and
// per-phase accounting of both.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/bench/gen/json.hpp"

namespace herald::bench {

using Clock = std::chrono::steady_clock;

// Nanoseconds on the steady clock: what message bodies carry as their intended send
// time, so sender and receiver (the same process) compare like with like.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}
inline double ns_to_ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Exact percentiles over all samples (nearest-rank on the sorted samples), not an
// estimate: benchmarks compare tails, where sketches are least accurate.
class Samples {
 public:
  void reserve(std::size_t n) { values_.reserve(n); }
  void add(double v) {
    values_.push_back(v);
    sorted_ = false;
  }
  std::size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  double percentile(double p);  // p in [0, 100]; NaN when empty
  double max();
  double mean() const;
  const std::vector<double>& values() const { return values_; }

  // {"p50": .., "p90": .., ...} for the given percentiles plus "max", rounded.
  Json summary(const std::vector<double>& percentiles, int decimals = 3);

 private:
  void sort();
  std::vector<double> values_;
  bool sorted_ = true;
};

// Counts per logarithmic bucket (10 per decade), for latency histograms on a log axis.
struct LogHistogram {
  std::vector<double> lower;      // bucket lower bounds (exclusive)
  std::vector<double> upper;      // bucket upper bounds (inclusive)
  std::vector<std::size_t> count;
  static LogHistogram of(const std::vector<double>& values);
};

// The errors of a run by kind, with the first few texts of each kind: enough to see
// what went wrong without a log of thousands of identical lines.
class Errors {
 public:
  void add(const std::string& kind, const std::string& text);
  std::size_t total() const { return total_; }
  std::size_t count(const std::string& kind) const;
  Json to_json() const;
  // "3 login (u17: timeout during SASL), 1 disconnected (...)"; empty when none.
  std::string brief() const;

 private:
  struct Kind {
    std::size_t count = 0;
    std::vector<std::string> examples;
  };
  std::map<std::string, Kind> kinds_;
  std::size_t total_ = 0;
};

// This process's CPU time (user + system) and peak resident memory, from getrusage.
double own_cpu_seconds();
std::uint64_t own_max_rss_bytes();

// Readings of another process from /proc; nullopt when it cannot be read (gone, no pid).
std::optional<double> process_cpu_seconds(int pid);  // utime + stime of all its threads
std::optional<std::uint64_t> process_rss_bytes(int pid);

// Wall time and CPU time (ours and the server's) of each phase of a run, so a reader can
// tell whether the generator or the server was the bottleneck.
class Meter {
 public:
  explicit Meter(int server_pid) : server_pid_(server_pid) {}
  void begin(std::string name);
  void end();  // closes the open phase, if any
  // Figures of the last closed phase (for per-step reports).
  Json last() const;
  Json generator_json() const;
  Json server_json() const;
  double last_generator_busy() const;

 private:
  struct Phase {
    std::string name;
    double wall = 0;
    double cpu = 0;
    std::optional<double> server_cpu;
  };
  Json phase_json(const Phase& p, bool server) const;

  int server_pid_;
  std::vector<Phase> phases_;
  bool open_ = false;
  std::string name_;
  Clock::time_point wall0_;
  double cpu0_ = 0;
  std::optional<double> server0_;
};

}  // namespace herald::bench
