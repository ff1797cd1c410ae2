// login: how fast the server logs clients in (TLS + SASL + bind + presence), with a
// bounded number of logins in flight, like a reconnect storm after a restart.
#include <fmt/format.h>

#include <algorithm>

#include "tools/bench/gen/driver.hpp"
#include "tools/bench/gen/scenarios.hpp"

namespace herald::bench {

awaitable<void> run_login(Run& run) {
  const auto& o = run.options;
  const int n = static_cast<int>(o.integer("clients"));
  const auto concurrency = static_cast<std::size_t>(o.integer("concurrency"));
  LoginPlan plan = plan_for_range(o.text("prefix"), static_cast<int>(o.integer("first")), n, concurrency);
  plan.on_end = count_disconnects(run);

  Json& results = run.results;
  results["clients"] = n;

  if (o.flag("warmup")) {
    // Fills the client's SCRAM cache (and warms the server's caches): the measured pass
    // then costs the generator only HMACs per login.
    run.meter.begin("warmup");
    LoginBatch warm;
    LoginPlan warm_plan = plan;
    warm_plan.error_kind = "warmup_login";
    co_await login_many(run.env, warm_plan, warm, run.errors);
    const std::chrono::milliseconds close_wait(2000);
    co_await close_all(run.env, warm.clients, close_wait);
    run.meter.end();
    results["warmup_failed"] = warm.failed;
    if (warm.fatal) {
      run.fail(*warm.fatal);
      co_return;
    }
  }

  run.meter.begin("login");
  const std::size_t derivations_before = run.env.scram.derivations();
  LoginBatch batch;
  const std::int64_t t0 = now_ns();
  co_await login_many(run.env, plan, batch, run.errors);
  const std::int64_t t1 = now_ns();
  run.meter.end();

  const double duration = static_cast<double>(t1 - t0) / 1e9;
  const std::size_t established = batch.clients.size();
  Samples latency;
  for (double v : batch.latency_ms) latency.add(v);
  results["established"] = established;
  results["failed"] = batch.failed;
  results["duration_seconds"] = round_to(duration, 4);
  results["logins_per_second"] = duration > 0 ? round_to(static_cast<double>(established) / duration, 1) : 0.0;
  results["latency_ms"] = latency.summary({50, 90, 99});
  // PBKDF2 runs of the generator during the measured pass (0 after --warmup): each costs
  // the generator as much as the server's check of the password.
  results["generator_scram_derivations"] = run.env.scram.derivations() - derivations_before;

  // Established clients over time, every 100 ms, from the login timestamps.
  std::vector<std::int64_t> at = batch.established_ns;
  std::sort(at.begin(), at.end());
  Json t_series = Json::array(), count_series = Json::array();
  run.chart.title = fmt::format("login: {} clients, {} in flight", n, concurrency);
  run.chart.xlabel = "seconds";
  run.chart.ylabel = "established clients";
  run.chart.columns = {"seconds", "established"};
  std::size_t reached = 0;
  for (std::int64_t t = 0;; t += 100'000'000) {
    while (reached < at.size() && at[reached] - t0 <= t) ++reached;
    t_series.push(round_to(static_cast<double>(t) / 1e9, 1));
    count_series.push(reached);
    run.chart.rows.push_back({static_cast<double>(t) / 1e9, static_cast<double>(reached)});
    if (t0 + t >= t1) break;
  }
  run.series["timeline"]["seconds"] = std::move(t_series);
  run.series["timeline"]["established"] = std::move(count_series);
  run.chart.plot = "plot DATA using 1:2 with lines linewidth 2 title 'established'";
  run.has_chart = true;

  run.summary = fmt::format("login: {}/{} clients in {:.3f} s = {:.1f} logins/s", established, n, duration,
                            duration > 0 ? static_cast<double>(established) / duration : 0.0);
  if (!latency.empty()) {
    run.summary += fmt::format("; latency p50 {:.1f} ms, p90 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms",
                               latency.percentile(50), latency.percentile(90), latency.percentile(99), latency.max());
  }

  run.meter.begin("close");
  const std::chrono::milliseconds close_wait(2000);
  co_await close_all(run.env, batch.clients, close_wait);
  run.meter.end();

  if (batch.fatal) {
    run.fail(*batch.fatal);
  } else if (batch.failed > 0) {
    run.fail(fmt::format("{} of {} logins failed", batch.failed, n));
  }
}

}  // namespace herald::bench
