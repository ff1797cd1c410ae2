// herald-bench: the load generator of Herald's benchmarks (docs/performance.md). It
// drives any XMPP server (Herald, Prosody, ejabberd) and the bench-floor TLS relay with
// standard XMPP from one single-threaded event loop, and writes a JSON report, a chart
// and a summary line per run. See `herald-bench --help`.
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "tools/bench/gen/driver.hpp"
#include "tools/bench/gen/report.hpp"
#include "tools/bench/gen/scenarios.hpp"

namespace {

using namespace herald::bench;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// Besides one descriptor per connection: stdio, epoll, eventfd, timerfd, files written.
constexpr rlim_t kSpareDescriptors = 64;

Target make_target(const Options& o) {
  Target t;
  t.domain = o.text("domain");
  t.password = o.text("password");
  const std::string& tls = o.text("tls");
  if (tls == "starttls") {
    t.tls = TlsMode::starttls;
  } else if (tls == "direct") {
    t.tls = TlsMode::direct;
  } else if (tls == "floor") {
    t.tls = TlsMode::floor;
  } else {
    throw UsageError(fmt::format("--tls must be starttls, direct or floor, not '{}'", tls));
  }
  const std::string& mech = o.text("mech");
  if (mech == "PLAIN") {
    t.mech = Mech::plain;
  } else if (mech == "SCRAM-SHA-1") {
    t.mech = Mech::scram_sha1;
  } else if (mech == "SCRAM-SHA-256") {
    t.mech = Mech::scram_sha256;
  } else {
    throw UsageError(fmt::format("--mech must be PLAIN, SCRAM-SHA-1 or SCRAM-SHA-256, not '{}'", mech));
  }
  t.login_timeout = step_timeout(o);

  const long long port = o.integer("port");
  if (port <= 0 || port > 65535) throw UsageError(fmt::format("--port {} is not a TCP port", port));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(o.text("host"), ec);
  if (ec) {
    // A name: resolve it once, here, before any load.
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    auto results = resolver.resolve(o.text("host"), std::to_string(port), ec);
    if (ec || results.empty()) {
      throw UsageError(fmt::format("cannot resolve --host {}: {}", o.text("host"), ec ? ec.message() : "no address"));
    }
    address = results.begin()->endpoint().address();
  }
  t.server = asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port));

  // Explicit source addresses only when asked for: the kernel's choice is right for a
  // single source, and a loopback source could not reach a remote --host.
  if (o.given("sources")) {
    const std::string& list = o.text("sources");
    std::size_t pos = 0;
    while (pos <= list.size()) {
      auto comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      const std::string item = list.substr(pos, comma - pos);
      auto source = asio::ip::make_address(item, ec);
      if (ec) throw UsageError(fmt::format("--sources: '{}' is not an IP address", item));
      if (source.is_v4() != address.is_v4()) {
        throw UsageError(fmt::format("--sources: {} and the server address {} are of different IP versions", item,
                                     address.to_string()));
      }
      t.sources.push_back(source);
      pos = comma + 1;
    }
  }
  return t;
}

// Raises the soft descriptor limit to the hard one; fails if the run cannot fit.
bool check_descriptors(std::size_t connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return true;  // cannot tell: let it run
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  const rlim_t need = static_cast<rlim_t>(connections) + kSpareDescriptors;
  if (lim.rlim_cur != RLIM_INFINITY && need > lim.rlim_cur) {
    std::cerr << fmt::format(
        "herald-bench: {} connections need about {} file descriptors, but the limit is {} (hard limit {}).\n"
        "Raise the hard limit, e.g. run `ulimit -Hn {}` as root before starting, or `prlimit --nofile={}:{} "
        "--pid $$` on the shell, or use fewer clients.\n",
        connections, need, lim.rlim_cur, lim.rlim_max, need, need, need);
    return false;
  }
  return true;
}

bool pin_cpu(long long cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= CPU_SETSIZE) return false;
  CPU_SET(static_cast<int>(cpu), &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A write to a connection the server already closed must be an error, not a signal.
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  Options options;
  Target target;
  try {
    options = Options::parse(args);
    validate_scenario(options);
    target = make_target(options);
  } catch (const HelpRequested& help) {
    std::cout << help.text;
    return exit_ok;
  } catch (const UsageError& e) {
    std::cerr << "herald-bench: " << e.what() << "\n";
    return exit_usage;
  }

  if (!pin_cpu(options.integer("cpu"))) {
    std::cerr << fmt::format("herald-bench: cannot pin to CPU {}; see `nproc` for the CPUs available\n",
                             options.integer("cpu"));
    return exit_usage;
  }
  if (!check_descriptors(connections_needed(options))) return exit_failure;

  const std::string started_at = iso8601_now();
  Env env(target);
  Run run(options, env);

  // The scenario runs as one coroutine; when it is done the loop stops, whatever
  // connections or timers are still pending.
  bool finished = false;
  auto on_done = [&](std::exception_ptr error) {
    finished = true;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        run.fail(fmt::format("internal error: {}", e.what()));
      }
    }
    env.io.stop();
  };
  asio::co_spawn(env.io, run_scenario(run), on_done);
  env.io.run();
  if (!finished) run.fail("the event loop stopped early");

  // Anything still open is closed; give the closed connections' coroutines a moment to
  // finish so that nothing is torn down mid-operation.
  abort_all(env);
  env.io.restart();
  env.io.run_for(std::chrono::seconds(2));

  int status = run.completed ? exit_ok : exit_failure;
  if (!options.text("out").empty()) {
    try {
      write_outputs(run, started_at, options.text("out"));
    } catch (const std::exception& e) {
      std::cerr << "herald-bench: " << e.what() << "\n";
      status = exit_failure;
    }
  }
  if (!run.summary.empty()) {
    std::cout << (options.text("label").empty() ? "" : options.text("label") + ": ") << run.summary << "\n";
  }
  if (run.errors.total() > 0) std::cout << "errors: " << run.errors.brief() << "\n";
  if (!run.completed) std::cerr << "herald-bench: " << options.scenario() << " did not complete: " << run.failure << "\n";
  return status;
}
