// roster: the cost of fetching a large roster at login, the first thing every real
// client does. Each round is a fresh connection: login (no presence), roster get, close.
#include <fmt/format.h>

#include "tools/bench/gen/driver.hpp"
#include "tools/bench/gen/scenarios.hpp"

namespace herald::bench {
namespace {

constexpr std::string_view kRosterNs = "jabber:iq:roster";

// The reply to the roster request of the current round.
struct RosterReply {
  bool received = false;
  std::int64_t at = 0;
  std::size_t items = 0;
  std::string error;  // the error condition if the server refused

  void on_stanza(const xml::Element& s) {
    if (received || s.name() != "iq" || s.attr_or("id") != "roster1") return;
    received = true;
    at = now_ns();  // the whole result has been parsed: it was fully received
    if (s.attr_or("type") != "result") {
      const auto* e = s.child("error", "jabber:client");
      const auto* condition = e ? e->first_element() : nullptr;
      error = condition ? condition->name() : std::string("no condition");
      return;
    }
    if (const auto* query = s.child("query", kRosterNs)) {
      for (const auto* item : query->elements()) {
        if (item->name() == "item") ++items;
      }
    }
  }
};

}  // namespace

awaitable<void> run_roster(Run& run) {
  const auto& o = run.options;
  auto& io = run.env.io;
  const std::string user = o.text("user");
  const auto expect = static_cast<std::size_t>(o.integer("expect"));
  const auto timeout = step_timeout(o);
  const std::chrono::milliseconds close_wait(2000);
  const Clock::duration pause = std::chrono::milliseconds(200);

  RosterReply reply;
  auto on_stanza = [&reply](Client&, const xml::Element& s) { reply.on_stanza(s); };
  Json rounds = Json::array();
  std::vector<double> login_ms, roster_ms;
  Json round_series = Json::array(), login_series = Json::array(), roster_series = Json::array();
  run.chart.title = fmt::format("roster of {} items: per round", expect);
  run.chart.xlabel = "round";
  run.chart.ylabel = "ms";
  run.chart.columns = {"round", "login_ms", "roster_ms"};

  for (int round = 1; round <= o.integer("rounds"); ++round) {
    reply = RosterReply();
    run.meter.begin(fmt::format("round {}", round));
    auto client = std::make_shared<Client>(run.env, 0, user);
    client->set_handlers(on_stanza, count_disconnects(run));
    LoginOptions options;
    options.presence = false;
    const std::int64_t t0 = now_ns();
    std::string failure;
    try {
      co_await client->login(options);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      run.meter.end();
      run.errors.add("login", failure);
      run.fail(failure);
      break;
    }
    const std::int64_t t1 = now_ns();
    client->send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>");
    auto received = [&reply] { return reply.received; };
    const Clock::time_point deadline = Clock::now() + timeout;
    const bool ok = co_await wait_until(io, received, deadline);
    run.meter.end();
    if (!ok) {
      run.errors.add("timeout", fmt::format("round {}: no roster result within {} s", round, o.number("timeout")));
      run.fail(fmt::format("round {}: the roster result did not come", round));
      client->abort();
      break;
    }

    const double login = ns_to_ms(t1 - t0);
    const double fetch = ns_to_ms(reply.at - t1);
    Json j = Json::object();
    j["round"] = round;
    j["login_ms"] = round_to(login, 3);
    j["roster_ms"] = round_to(fetch, 3);
    j["items"] = reply.items;
    rounds.push(std::move(j));
    progress(fmt::format("roster: round {}: login {:.2f} ms, roster {:.2f} ms, {} items", round, login, fetch,
                         reply.items));
    if (!reply.error.empty()) {
      run.errors.add("roster_error", fmt::format("round {}: the server answered {}", round, reply.error));
      run.fail(fmt::format("the server refused the roster request: {}", reply.error));
    } else if (reply.items != expect) {
      run.errors.add("roster_count", fmt::format("round {}: {} items, expected {}", round, reply.items, expect));
      run.fail(fmt::format("the roster has {} items, not the {} expected (--expect)", reply.items, expect));
    }
    login_ms.push_back(login);
    roster_ms.push_back(fetch);
    round_series.push(round);
    login_series.push(round_to(login, 3));
    roster_series.push(round_to(fetch, 3));
    run.chart.rows.push_back({static_cast<double>(round), login, fetch});

    co_await client->close(close_wait);
    co_await sleep_for(io, pause);
  }

  run.results["user"] = user;
  run.results["expected_items"] = expect;
  run.results["rounds"] = std::move(rounds);
  run.results["login_ms_median"] = round_to(median(login_ms), 3);
  run.results["roster_ms_median"] = round_to(median(roster_ms), 3);
  run.series["rounds"]["round"] = std::move(round_series);
  run.series["rounds"]["login_ms"] = std::move(login_series);
  run.series["rounds"]["roster_ms"] = std::move(roster_series);
  run.chart.settings = {"set xtics 1", "set yrange [0:*]"};
  run.chart.plot =
      "plot DATA using 1:3 with linespoints linewidth 2 pointtype 7 title 'roster result', "
      "DATA using 1:2 with linespoints linewidth 2 pointtype 5 title 'login'";
  run.has_chart = !login_ms.empty();
  run.summary = fmt::format("roster: {} items: fetch {:.2f} ms, login {:.2f} ms (medians of {} rounds)", expect,
                            median(roster_ms), median(login_ms), roster_ms.size());
}

}  // namespace herald::bench
