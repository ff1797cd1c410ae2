// idle: the server's memory per established, idle session, read from /proc at
// increasing numbers of sessions. The sessions stay connected (answering pings) until
// the end, so every reading includes all of them.
#include <fmt/format.h>

#include "tools/bench/gen/driver.hpp"
#include "tools/bench/gen/scenarios.hpp"

namespace herald::bench {

awaitable<void> run_idle(Run& run) {
  const auto& o = run.options;
  const int pid = static_cast<int>(o.integer("server-pid"));
  std::vector<long long> steps = o.integers("steps");
  if (steps.empty()) steps.push_back(o.integer("clients"));
  const auto settle = std::chrono::milliseconds(static_cast<long long>(o.number("settle") * 1000));
  const int first = static_cast<int>(o.integer("first"));

  // The baseline after a short settle, so the reading is not taken mid-allocation of
  // whatever the server was doing when we started.
  const Clock::duration settle_first = std::chrono::seconds(1);
  co_await sleep_for(run.env.io, settle_first);
  const auto baseline = process_rss_bytes(pid);
  if (!baseline) {
    run.fail(fmt::format("cannot read /proc/{}/status: is --server-pid right and the server running?", pid));
    co_return;
  }
  run.results["baseline_rss_bytes"] = *baseline;

  std::vector<std::shared_ptr<Client>> clients;
  Json steps_json = Json::array();
  Json sessions_series = Json::array(), rss_series = Json::array();
  run.chart.title = "idle sessions: server memory";
  run.chart.xlabel = "sessions";
  run.chart.ylabel = "RSS (MiB)";
  run.chart.columns = {"sessions", "rss_mib"};
  run.chart.rows.push_back({0, static_cast<double>(*baseline) / 1048576.0});
  sessions_series.push(0);
  rss_series.push(round_to(static_cast<double>(*baseline) / 1048576.0, 2));

  long long previous_count = 0;
  std::uint64_t previous_rss = *baseline;
  for (long long target : steps) {
    const int count = static_cast<int>(target - previous_count);
    run.meter.begin(fmt::format("login to {}", target));
    LoginPlan plan = plan_for_range(o.text("prefix"), first + static_cast<int>(previous_count), count,
                                    static_cast<std::size_t>(o.integer("concurrency")));
    plan.on_end = count_disconnects(run);
    LoginBatch batch;
    const std::int64_t t0 = now_ns();
    co_await login_many(run.env, plan, batch, run.errors);
    const double login_seconds = static_cast<double>(now_ns() - t0) / 1e9;
    run.meter.end();
    for (auto& c : batch.clients) clients.push_back(std::move(c));
    if (batch.failed > 0) {
      if (batch.fatal) {
        run.fail(*batch.fatal);
      } else {
        run.fail(fmt::format("{} logins failed at the step to {}", batch.failed, target));
      }
      break;
    }

    run.meter.begin(fmt::format("settle at {}", target));
    co_await sleep_for(run.env.io, settle);
    run.meter.end();
    const auto rss = process_rss_bytes(pid);
    if (!rss) {
      run.fail(fmt::format("cannot read /proc/{}/status any more: did the server exit?", pid));
      break;
    }
    std::size_t alive = 0;
    for (const auto& c : clients) alive += c->ended() ? 0 : 1;

    const double per_session = static_cast<double>(static_cast<long long>(*rss) - static_cast<long long>(*baseline)) /
                               static_cast<double>(target);
    const double marginal = static_cast<double>(static_cast<long long>(*rss) - static_cast<long long>(previous_rss)) /
                            static_cast<double>(count);
    Json step = Json::object();
    step["clients"] = target;
    step["alive"] = alive;
    step["rss_bytes"] = *rss;
    step["bytes_per_session"] = round_to(per_session, 0);
    step["marginal_bytes_per_session"] = round_to(marginal, 0);
    step["login_seconds"] = round_to(login_seconds, 3);
    steps_json.push(std::move(step));
    sessions_series.push(target);
    rss_series.push(round_to(static_cast<double>(*rss) / 1048576.0, 2));
    run.chart.rows.push_back({static_cast<double>(target), static_cast<double>(*rss) / 1048576.0});
    progress(fmt::format("idle: {} sessions ({} alive): RSS {:.1f} MiB, {:.0f} bytes/session, marginal {:.0f}", target,
                         alive, static_cast<double>(*rss) / 1048576.0, per_session, marginal));
    run.summary = fmt::format("idle: {} sessions: RSS {:.1f} MiB (baseline {:.1f} MiB), {:.0f} bytes per session",
                              target, static_cast<double>(*rss) / 1048576.0,
                              static_cast<double>(*baseline) / 1048576.0, per_session);
    previous_count = target;
    previous_rss = *rss;
    if (alive < static_cast<std::size_t>(target)) {
      // The reading no longer describes `target` sessions: stop here.
      run.fail(fmt::format("{} of {} sessions were lost before the reading at {} (see errors)",
                           static_cast<std::size_t>(target) - alive, target, target));
      break;
    }
  }
  run.results["steps"] = std::move(steps_json);
  run.series["memory"]["sessions"] = std::move(sessions_series);
  run.series["memory"]["rss_mib"] = std::move(rss_series);
  run.chart.settings = {"set yrange [0:*]"};
  run.chart.plot = "plot DATA using 1:2 with linespoints linewidth 2 pointtype 7 title 'server RSS'";
  run.has_chart = true;

  run.meter.begin("close");
  const std::chrono::milliseconds close_wait(2000);
  co_await close_all(run.env, clients, close_wait);
  run.meter.end();
}

}  // namespace herald::bench
