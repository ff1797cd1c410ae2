// fanout: how long one user's presence takes to reach all of its K contacts (the roster
// relations are provisioned by the caller: owner and each contact subscribed both ways).
// Measured once for the owner's initial presence and then for each of R changes.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "tools/bench/gen/driver.hpp"
#include "tools/bench/gen/scenarios.hpp"

namespace herald::bench {
namespace {

constexpr int kOwnerNumber = -1;  // contacts are numbered from --first (>= 0)

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The bare JID of a 'from', lowercased: servers may normalise the case of what we send.
std::string bare_of(std::string_view jid) { return lower(jid.substr(0, jid.find('/'))); }

struct Fanout {
  Fanout(std::string owner, int first, int contacts)
      : owner_bare(lower(owner)), first(first), initial_at(static_cast<std::size_t>(contacts), 0) {}

  void on_stanza(Client& c, const xml::Element& s) {
    const std::int64_t now = now_ns();
    last_activity_ns = now;
    if (c.number() == kOwnerNumber) {
      if (s.name() == "presence") ++owner_presences;
      return;
    }
    if (s.name() != "presence" || bare_of(s.attr_or("from")) != owner_bare) return;
    if (!s.attr_or("type").empty()) return;  // unavailable, subscription requests...: not what we wait for
    const auto i = static_cast<std::size_t>(c.number() - first);
    if (i >= initial_at.size()) return;
    if (initial_at[i] == 0) {
      initial_at[i] = now;
      ++initial_count;
    }
    if (round > 0 && round_at[i] == 0 && s.child_text("status", "jabber:client") == round_status) {
      round_at[i] = now;
      ++round_count;
    }
  }

  std::string owner_bare;
  int first;
  std::vector<std::int64_t> initial_at;  // per contact: when the owner's first available presence came; 0 = not yet
  std::size_t initial_count = 0;
  int round = 0;  // the round being measured, 0 before the first
  std::string round_status;
  std::vector<std::int64_t> round_at;  // per contact: when this round's presence came
  std::size_t round_count = 0;
  std::size_t owner_presences = 0;  // presences the owner received (from its contacts)
  std::int64_t last_activity_ns = 0;
};

}  // namespace

awaitable<void> run_fanout(Run& run) {
  const auto& o = run.options;
  auto& io = run.env.io;
  const int k = static_cast<int>(o.integer("contacts"));
  const int first = static_cast<int>(o.integer("first"));
  const std::string owner = o.text("owner");
  const auto timeout = step_timeout(o);
  const Clock::duration quiet_between = std::chrono::milliseconds(200);
  const Clock::duration quiet_rounds = std::chrono::milliseconds(300);
  const std::chrono::milliseconds close_wait(2000);
  Fanout f(fmt::format("{}@{}", owner, run.env.target.domain), first, k);
  auto on_stanza = [&f](Client& c, const xml::Element& s) { f.on_stanza(c, s); };

  // 1. The contacts, with initial presence.
  run.meter.begin("login contacts");
  LoginPlan plan = plan_for_range(o.text("prefix"), first, k, static_cast<std::size_t>(o.integer("concurrency")));
  plan.on_stanza = on_stanza;
  plan.on_end = count_disconnects(run);
  LoginBatch contacts;
  co_await login_many(run.env, plan, contacts, run.errors);
  run.meter.end();
  std::vector<std::shared_ptr<Client>> everyone = contacts.clients;
  if (contacts.failed > 0) {
    if (contacts.fatal) {
      run.fail(*contacts.fatal);
    } else {
      run.fail(fmt::format("{} of {} contact logins failed", contacts.failed, k));
    }
    co_await close_all(run.env, everyone, close_wait);
    co_return;
  }
  Clock::time_point deadline = Clock::now() + timeout;
  co_await wait_quiet(io, f.last_activity_ns, quiet_between, deadline);

  // 2. The owner; then its initial presence reaching every contact.
  run.meter.begin("owner initial presence");
  LoginPlan owner_plan;
  owner_plan.numbers = {kOwnerNumber};
  owner_plan.users = {owner};
  owner_plan.on_stanza = on_stanza;
  owner_plan.on_end = count_disconnects(run);
  LoginBatch owner_batch;
  co_await login_many(run.env, owner_plan, owner_batch, run.errors);
  if (owner_batch.clients.empty()) {
    run.meter.end();
    run.fail(fmt::format("the owner {} could not log in", owner));
    co_await close_all(run.env, everyone, close_wait);
    co_return;
  }
  const std::shared_ptr<Client> owner_client = owner_batch.clients.front();
  everyone.push_back(owner_client);
  const std::int64_t owner_online = owner_batch.established_ns.front();
  auto all_initial = [&f, k] { return f.initial_count >= static_cast<std::size_t>(k); };
  deadline = Clock::now() + timeout;
  const bool initial_ok = co_await wait_until(io, all_initial, deadline);
  run.meter.end();
  Json& r = run.results;
  r["contacts"] = k;
  r["owner_login_ms"] = round_to(owner_batch.latency_ms.front(), 3);
  r["initial_reached"] = f.initial_count;
  if (!initial_ok) {
    r["initial_fanout_ms"] = Json();
    run.errors.add("timeout", fmt::format("the owner's initial presence reached {} of {} contacts within {} s",
                                          f.initial_count, k, o.number("timeout")));
    run.fail(fmt::format("the owner's initial presence reached only {} of {} contacts: are they subscribed both ways?",
                         f.initial_count, k));
    co_await close_all(run.env, everyone, close_wait);
    co_return;
  }
  const double initial_ms = ns_to_ms(*std::max_element(f.initial_at.begin(), f.initial_at.end()) - owner_online);
  r["initial_fanout_ms"] = round_to(initial_ms, 3);
  deadline = Clock::now() + timeout;
  co_await wait_quiet(io, f.last_activity_ns, quiet_between, deadline);
  r["owner_received_presences"] = f.owner_presences;

  // 3. Presence changes.
  Json rounds = Json::array();
  std::vector<double> all_ms;
  std::vector<std::vector<double>> arrivals;  // per round: every contact's arrival, ms after the send
  for (int round = 1; round <= o.integer("rounds"); ++round) {
    f.round = round;
    f.round_status = fmt::format("round {}", round);
    f.round_at.assign(static_cast<std::size_t>(k), 0);
    f.round_count = 0;
    const char* show = round % 2 ? "away" : "chat";  // each round a visible change
    run.meter.begin(fmt::format("round {}", round));
    const std::int64_t sent = now_ns();
    owner_client->send(fmt::format("<presence><show>{}</show><status>{}</status></presence>", show, f.round_status));
    auto all_reached = [&f, k] { return f.round_count >= static_cast<std::size_t>(k); };
    deadline = Clock::now() + timeout;
    const bool ok = co_await wait_until(io, all_reached, deadline);
    run.meter.end();

    std::vector<double> times;
    for (auto at : f.round_at) {
      if (at) times.push_back(ns_to_ms(at - sent));
    }
    std::sort(times.begin(), times.end());
    Json j = Json::object();
    j["round"] = round;
    j["show"] = show;
    j["reached"] = times.size();
    if (ok) {
      j["all_ms"] = round_to(times.back(), 3);
    } else {
      j["all_ms"] = Json();
    }
    Samples s;
    for (double t : times) s.add(t);
    j["p50_ms"] = round_to(s.percentile(50), 3);
    j["p90_ms"] = round_to(s.percentile(90), 3);
    rounds.push(std::move(j));
    progress(fmt::format("fanout: round {}: {} of {} contacts, all in {:.2f} ms", round, times.size(), k,
                         times.empty() ? 0.0 : times.back()));
    if (!ok) {
      run.errors.add("timeout",
                     fmt::format("round {} reached {} of {} contacts within {} s", round, times.size(), k, o.number("timeout")));
      run.fail(fmt::format("round {} did not reach every contact", round));
      break;
    }
    all_ms.push_back(times.back());
    arrivals.push_back(std::move(times));
    deadline = Clock::now() + timeout;
    co_await wait_quiet(io, f.last_activity_ns, quiet_rounds, deadline);
  }
  r["rounds"] = std::move(rounds);
  const double med = median(all_ms);
  r["median_all_ms"] = round_to(med, 3);

  // The chart: arrivals of the median round (the lower middle one for an even count).
  if (!arrivals.empty()) {
    std::vector<std::size_t> order(arrivals.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&all_ms](std::size_t a, std::size_t b) { return all_ms[a] < all_ms[b]; });
    const std::size_t median_round = order[(order.size() - 1) / 2];
    r["median_round"] = median_round + 1;
    Json ms = Json::array(), count = Json::array();
    run.chart.title = fmt::format("presence fan-out to {} contacts (round {})", k, median_round + 1);
    run.chart.xlabel = "ms after the presence was sent";
    run.chart.ylabel = "contacts reached";
    run.chart.columns = {"ms", "reached"};
    const auto& times = arrivals[median_round];
    run.chart.rows.push_back({0, 0});  // the send
    run.chart.settings = {"set xrange [0:*]", "set yrange [0:*]"};
    for (std::size_t i = 0; i < times.size(); ++i) {
      ms.push(round_to(times[i], 3));
      count.push(i + 1);
      run.chart.rows.push_back({times[i], static_cast<double>(i + 1)});
    }
    run.series["median_round_arrivals"]["ms"] = std::move(ms);
    run.series["median_round_arrivals"]["reached"] = std::move(count);
    run.chart.plot = "plot DATA using 1:2 with steps linewidth 2 title 'contacts reached'";
    run.has_chart = true;
  }
  run.summary = fmt::format("fanout: {} contacts: initial presence in {:.2f} ms, changes in {:.2f} ms (median of {})", k,
                            initial_ms, med, all_ms.size());

  run.meter.begin("close");
  co_await close_all(run.env, everyone, close_wait);
  run.meter.end();
}

}  // namespace herald::bench
