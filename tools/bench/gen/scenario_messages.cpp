// messages: one-to-one chat throughput and latency. Sender k sends to receiver P+k's
// full JID (servers differ in how they route bare JIDs); an aggregate rate is spread
// over the senders round-robin by a 1 ms tick.
//
// Each message carries its sequence number and its intended send time. Latency is taken
// from the intended time, not from when the generator got round to sending it, so a
// stalled server (or generator) shows up as latency instead of silently lowering the
// offered load ("coordinated omission").
#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "server/xml/serializer.hpp"
#include "tools/bench/gen/driver.hpp"
#include "tools/bench/gen/scenarios.hpp"

namespace herald::bench {
namespace {

constexpr double kRateFactor = 1.5;  // --find-max: rate increase per search step

// What one step (a warm-up plus a measured window at one rate) produced.
struct StepStats {
  double rate = 0;
  std::int64_t offered = 0;   // measured messages scheduled
  std::int64_t sent = 0;      // measured messages handed to a sender's queue
  std::int64_t received = 0;  // measured messages received before the drain ended
  Samples latency_ms;         // one per received measured message
  Samples send_lag_ms;        // per measured message: how late the generator queued it
  std::size_t backlog_mid = 0, backlog_end = 0, backlog_after_drain = 0;  // bytes in the senders' queues
  bool backlog_growing = false;
  std::size_t disconnected = 0;  // connections lost during the step
  Json meter;                    // wall time and CPU busy of the measured window

  double received_ratio() const { return sent > 0 ? static_cast<double>(received) / static_cast<double>(sent) : 0.0; }
};

std::string error_condition(const xml::Element& stanza) {
  if (const auto* error = stanza.child("error", "jabber:client")) {
    if (const auto* condition = error->first_element()) return condition->name();
  }
  return "no condition";
}

class Traffic {
 public:
  Traffic(Run& run, int first, int pairs)
      : run_(run),
        first_(first),
        pairs_(pairs),
        body_bytes_(static_cast<std::size_t>(run.options.integer("body-bytes"))),
        senders_(static_cast<std::size_t>(pairs)),
        receivers_(static_cast<std::size_t>(pairs)) {}

  bool is_sender(int number) const { return number < first_ + pairs_; }
  int receiver_of(int sender_number) const { return sender_number + pairs_; }

  // Places the logged-in clients by number; false if any is missing.
  bool place(const std::vector<std::shared_ptr<Client>>& clients) {
    for (const auto& c : clients) {
      const int index = c->number() - first_;
      if (index < pairs_) {
        senders_[static_cast<std::size_t>(index)] = c;
      } else {
        receivers_[static_cast<std::size_t>(index - pairs_)] = c;
      }
    }
    for (int k = 0; k < pairs_; ++k) {
      const auto& r = receivers_[static_cast<std::size_t>(k)];
      if (!senders_[static_cast<std::size_t>(k)] || !r) return false;
      to_.push_back(xml::escape_attr(r->full_jid()));
    }
    return true;
  }

  void on_stanza(Client& c, const xml::Element& s) {
    last_activity_ns = now_ns();
    if (s.name() != "message") return;  // presence and iq results play no part here
    if (s.attr_or("type") == "error") {
      run_.errors.add("message_error", fmt::format("{} got an error bounce: {}", c.user(), error_condition(s)));
      return;
    }
    if (is_sender(c.number())) {
      run_.errors.add("unexpected_message", fmt::format("sender {} got a message from {}", c.user(), s.attr_or("from")));
      return;
    }
    receive(c, s);
  }

  // Runs one step; `drain` is how long to wait for messages still in flight at its end.
  awaitable<StepStats> step(double rate, double warmup_s, double measure_s, Clock::duration drain);

  std::size_t backlog() const {
    std::size_t b = 0;
    for (const auto& s : senders_) b += s->backlog();
    return b;
  }
  std::size_t late() const { return late_; }
  std::size_t message_bytes() const { return to_.empty() ? 0 : 80 + to_.front().size() + body_bytes_; }

  std::int64_t last_activity_ns = 0;  // any stanza received by any client

 private:
  void receive(Client& c, const xml::Element& s) {
    const std::int64_t arrived = now_ns();
    const std::string body = s.child_text("body", "jabber:client");
    std::int64_t seq = -1, intended = 0;
    const char* p = body.data();
    const char* end = body.data() + body.size();
    auto r1 = std::from_chars(p, end, seq);
    bool ok = r1.ec == std::errc() && r1.ptr < end && *r1.ptr == ' ';
    if (ok) {
      auto r2 = std::from_chars(r1.ptr + 1, end, intended);
      ok = r2.ec == std::errc();
    }
    if (!ok || seq < 0) {
      run_.errors.add("unexpected_message", fmt::format("{} got a message with body '{}'", c.user(), body.substr(0, 60)));
      return;
    }
    if (!active_ || seq < base_) {
      ++late_;  // from an earlier step, after its drain ended
      return;
    }
    if (seq >= end_) {
      run_.errors.add("unexpected_message", fmt::format("{} got message {} that was never sent", c.user(), seq));
      return;
    }
    auto& seen = seen_[static_cast<std::size_t>(seq - base_)];
    if (seen) {
      run_.errors.add("duplicate_message", fmt::format("{} got message {} twice", c.user(), seq));
      return;
    }
    seen = 1;
    const int expected = first_ + pairs_ + static_cast<int>(seq % pairs_);
    if (c.number() != expected) {
      run_.errors.add("misrouted_message", fmt::format("{} got message {} meant for number {}", c.user(), seq, expected));
    }
    ++received_step_;
    if (seq >= measure_from_) {
      ++received_measured_;
      latency_.add(ns_to_ms(arrived - intended));
    }
  }

  // `now` is when the message is queued, for the send lag.
  void send_one(std::int64_t seq, std::int64_t intended_ns, std::int64_t now) {
    const auto k = static_cast<std::size_t>(seq % pairs_);
    std::string& m = scratch_;
    m.clear();
    m += "<message to='";
    m += to_[k];
    m += "' type='chat' id='";
    fmt::format_to(std::back_inserter(m), "{}'><body>", seq);
    const std::size_t body_start = m.size();
    fmt::format_to(std::back_inserter(m), "{} {} ", seq, intended_ns);
    const std::size_t body_len = m.size() - body_start;
    if (body_len < body_bytes_) m.append(body_bytes_ - body_len, 'x');
    m += "</body></message>";
    if (senders_[k]->send(m)) {
      ++sent_step_;
      if (seq >= measure_from_) {
        ++sent_measured_;
        send_lag_.add(ns_to_ms(now - intended_ns));
      }
    }
  }

  Run& run_;
  int first_;
  int pairs_;
  std::size_t body_bytes_;
  std::vector<std::shared_ptr<Client>> senders_;    // by pair index
  std::vector<std::shared_ptr<Client>> receivers_;  // by pair index
  std::vector<std::string> to_;                     // receiver's full JID, escaped, by pair index
  std::string scratch_;

  // The current step: sequence numbers [base_, end_), measured from measure_from_.
  // Sequence numbers keep growing across steps, so a straggler from an earlier step is
  // recognised as such.
  std::int64_t next_seq_ = 0;
  std::int64_t base_ = 0, measure_from_ = 0, end_ = 0;
  bool active_ = false;
  std::vector<std::uint8_t> seen_;
  Samples latency_;
  Samples send_lag_;
  std::int64_t sent_step_ = 0, sent_measured_ = 0;
  std::int64_t received_step_ = 0, received_measured_ = 0;
  std::size_t late_ = 0;
};

awaitable<StepStats> Traffic::step(double rate, double warmup_s, double measure_s, Clock::duration drain) {
  auto& io = run_.env.io;
  StepStats st;
  st.rate = rate;
  const auto warm = static_cast<std::int64_t>(std::llround(rate * warmup_s));
  const auto measured = std::max<std::int64_t>(1, std::llround(rate * measure_s));
  const std::int64_t total = warm + measured;
  base_ = next_seq_;
  measure_from_ = base_ + warm;
  end_ = base_ + total;
  next_seq_ = end_;
  seen_.assign(static_cast<std::size_t>(total), 0);
  latency_ = Samples();
  latency_.reserve(static_cast<std::size_t>(measured));
  send_lag_ = Samples();
  send_lag_.reserve(static_cast<std::size_t>(measured));
  sent_step_ = sent_measured_ = received_step_ = received_measured_ = 0;
  active_ = true;
  const std::size_t disconnected_before = run_.errors.count("disconnected");

  // Message n of the step is due at start + n/rate. Each tick sends every message due
  // by now; if a tick comes late the overdue messages go out at once, still stamped
  // with their intended times. So every latency includes the wait for the next tick
  // (0 to 1 ms, 0.5 on average), and a generator that falls behind shows in the send
  // lag (queued minus intended time) as well as in the latency.
  const double ns_per_message = 1e9 / rate;
  const std::string phase = fmt::format("{:.0f} msg/s", rate);
  asio::steady_timer tick(io);
  auto next_tick = Clock::now();
  const std::int64_t start = now_ns();
  std::int64_t n = 0;
  bool measuring = false, mid_sampled = false;
  run_.meter.begin(phase + " warm-up");
  while (n < total) {
    const std::int64_t now = now_ns();
    const std::int64_t elapsed = now - start;
    const std::int64_t due =
        std::min<std::int64_t>(total, static_cast<std::int64_t>(static_cast<double>(elapsed) / ns_per_message) + 1);
    for (; n < due; ++n) {
      send_one(base_ + n, start + static_cast<std::int64_t>(static_cast<double>(n) * ns_per_message), now);
    }
    if (!measuring && n > warm) {
      run_.meter.begin(phase);
      measuring = true;
    }
    if (!mid_sampled && n >= warm + measured / 2) {
      st.backlog_mid = backlog();
      mid_sampled = true;
    }
    if (n >= total) break;
    next_tick += std::chrono::milliseconds(1);
    tick.expires_at(next_tick);
    co_await tick.async_wait(use_awaitable);
  }
  st.backlog_end = backlog();
  run_.meter.end();
  st.meter = run_.meter.last();

  auto all_arrived = [this] { return received_step_ >= sent_step_; };
  const Clock::time_point drain_deadline = Clock::now() + drain;
  co_await wait_until(io, all_arrived, drain_deadline);
  active_ = false;

  st.backlog_after_drain = backlog();
  st.offered = measured;
  st.sent = sent_measured_;
  st.received = received_measured_;
  st.latency_ms = std::move(latency_);
  st.send_lag_ms = std::move(send_lag_);
  st.disconnected = run_.errors.count("disconnected") - disconnected_before;
  // The server stopped reading if the queues hold more than a quarter second of traffic
  // at the end and grew over the second half of the step.
  const double threshold = std::max(65536.0, 0.25 * rate * static_cast<double>(message_bytes()));
  st.backlog_growing = static_cast<double>(st.backlog_end) > threshold && st.backlog_end > st.backlog_mid;
  co_return st;
}

Json step_json(StepStats& st) {
  Json j = Json::object();
  j["rate"] = round_to(st.rate, 1);
  j["offered"] = st.offered;
  j["sent"] = st.sent;
  j["received"] = st.received;
  j["lost"] = st.sent - st.received;
  j["received_ratio"] = round_to(st.received_ratio(), 5);
  j["latency_ms"] = st.latency_ms.summary({50, 90, 99, 99.9});
  j["send_lag_ms"] = st.send_lag_ms.summary({50, 99});
  j["backlog_bytes"] = Json::object();
  j["backlog_bytes"]["mid"] = st.backlog_mid;
  j["backlog_bytes"]["end"] = st.backlog_end;
  j["backlog_bytes"]["after_drain"] = st.backlog_after_drain;
  j["backlog_growing"] = st.backlog_growing;
  j["disconnected"] = st.disconnected;
  j["measured_window"] = st.meter;
  return j;
}

// --rate: one measured run.
awaitable<void> fixed_rate(Run& run, Traffic& traffic) {
  const auto& o = run.options;
  const double rate = o.number("rate");
  const double duration = o.number("duration");
  const Clock::duration drain = std::chrono::seconds(2);
  const double warmup = o.number("warmup-seconds");
  StepStats st = co_await traffic.step(rate, warmup, duration, drain);
  Json& r = run.results;
  r["mode"] = "rate";
  r["rate"] = rate;
  r["duration_seconds"] = duration;
  r["offered"] = st.offered;
  r["sent"] = st.sent;
  r["received"] = st.received;
  r["lost"] = st.sent - st.received;
  r["achieved_rate"] = round_to(static_cast<double>(st.received) / duration, 1);
  r["latency_ms"] = st.latency_ms.summary({50, 90, 99, 99.9});
  r["send_lag_ms"] = st.send_lag_ms.summary({50, 99});
  r["pacing_tick_ms"] = 1;
  r["backlog_bytes_at_end"] = st.backlog_end;
  r["backlog_growing"] = st.backlog_growing;
  r["late_from_warmup"] = traffic.late();
  r["measured_window"] = st.meter;

  const LogHistogram h = LogHistogram::of(st.latency_ms.values());
  Json lower = Json::array(), upper = Json::array(), count = Json::array();
  run.chart.title = fmt::format("messages: latency at {:.0f} msg/s ({} samples)", rate, st.latency_ms.size());
  run.chart.xlabel = "latency (ms)";
  run.chart.ylabel = "messages";
  run.chart.columns = {"lower_ms", "upper_ms", "count"};
  run.chart.settings = {"set logscale x", "set style fill solid 0.5", "set key top right"};
  for (std::size_t i = 0; i < h.upper.size(); ++i) {
    lower.push(round_to(h.lower[i], 4));
    upper.push(round_to(h.upper[i], 4));
    count.push(h.count[i]);
    run.chart.rows.push_back({h.lower[i], h.upper[i], static_cast<double>(h.count[i])});
  }
  run.series["histogram"]["lower_ms"] = std::move(lower);
  run.series["histogram"]["upper_ms"] = std::move(upper);
  run.series["histogram"]["count"] = std::move(count);
  // Each bucket a box from its lower to its upper bound (boxes of equal width on the log axis).
  run.chart.plot =
      "plot DATA using (sqrt($1*$2)):($3/2):1:2:(0):3 with boxxyerror title 'messages per latency bucket (10 per "
      "decade)'";
  run.has_chart = true;

  run.summary = fmt::format(
      "messages: {:.0f} msg/s for {} s: sent {}, received {}, lost {}; latency p50 {:.2f} ms, p99 {:.2f} ms, "
      "p99.9 {:.2f} ms, max {:.2f} ms; generator busy {:.2f}",
      rate, duration, st.sent, st.received, st.sent - st.received, st.latency_ms.percentile(50),
      st.latency_ms.percentile(99), st.latency_ms.percentile(99.9), st.latency_ms.max(), run.meter.last_generator_busy());
  if (st.disconnected > 0) run.fail(fmt::format("{} connections were lost during the run", st.disconnected));
}

// --find-max: rising rates until a step fails, then bisection.
awaitable<void> find_max(Run& run, Traffic& traffic) {
  const auto& o = run.options;
  const double limit = o.number("p99-ms");
  const double warm = o.number("warmup-seconds");
  const double measure = o.number("step-duration");
  const double max_rate = o.number("max-rate");
  const Clock::duration drain = std::chrono::seconds(3);

  Json steps = Json::array();
  struct Point {
    double rate, p50, p99, p999;
    bool pass;
  };
  std::vector<Point> points;
  double last_pass = 0, first_fail = 0;
  bool lost_connections = false;

  // One step: runs it, judges it, records it. Returns whether it passed.
  auto judge = [&](StepStats& st, const char* stage, bool& pass) {
    const double p99 = st.latency_ms.percentile(99);
    std::string reason;
    if (st.disconnected > 0) {
      reason = fmt::format("{} connections lost", st.disconnected);
      lost_connections = true;
    } else if (st.received == 0 || !(p99 < limit)) {
      reason = fmt::format("p99 {:.2f} ms >= {} ms", p99, limit);
    } else if (st.received_ratio() < 0.999) {
      reason = fmt::format("only {:.3f}% received", 100 * st.received_ratio());
    } else if (st.backlog_growing) {
      reason = fmt::format("the server stopped reading ({} bytes queued)", st.backlog_end);
    }
    pass = reason.empty();
    Json j = step_json(st);
    j["stage"] = stage;
    j["pass"] = pass;
    if (!pass) j["reason"] = reason;
    steps.push(std::move(j));
    points.push_back({st.rate, st.latency_ms.percentile(50), p99, st.latency_ms.percentile(99.9), pass});
    progress(fmt::format("messages: {} {:.0f} msg/s: p50 {:.2f} ms, p99 {:.2f} ms, received {:.3f}% -> {}{}", stage,
                         st.rate, st.latency_ms.percentile(50), p99, 100 * st.received_ratio(),
                         pass ? "pass" : "FAIL: ", reason));
  };

  // A failing step is run once more at the same rate and fails only if it fails again:
  // one stall of the machine (another tenant, a page-cache flush) must not end the
  // search for good. Lost connections are never retried.
  auto attempt = [&](double at, const char* stage) -> awaitable<bool> {
    StepStats st = co_await traffic.step(at, warm, measure, drain);
    bool pass = false;
    judge(st, stage, pass);
    if (pass || lost_connections) co_return pass;
    StepStats again = co_await traffic.step(at, warm, measure, drain);
    judge(again, "retry", pass);
    co_return pass;
  };

  double rate = o.number("start");
  for (;;) {
    const bool pass = co_await attempt(rate, "search");
    if (!pass) {
      first_fail = rate;
      break;
    }
    last_pass = rate;
    if (rate >= max_rate) break;
    rate = std::min(max_rate, std::round(rate * kRateFactor));
  }
  if (first_fail > 0 && !lost_connections) {
    for (long long i = 0; i < o.integer("bisect"); ++i) {
      const double mid = std::round((last_pass + first_fail) / 2);
      if (mid <= last_pass || mid >= first_fail) break;
      const bool pass = co_await attempt(mid, "bisect");
      if (lost_connections) break;
      if (pass) {
        last_pass = mid;
      } else {
        first_fail = mid;
      }
    }
  }

  Json& r = run.results;
  r["mode"] = "find-max";
  r["max_rate"] = last_pass;
  if (first_fail > 0) {
    r["first_failing_rate"] = first_fail;
  } else {
    r["first_failing_rate"] = Json();
  }
  r["p99_limit_ms"] = limit;
  r["reached_max_rate_option"] = first_fail == 0;
  r["steps"] = std::move(steps);
  r["late_messages"] = traffic.late();

  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.rate < b.rate; });
  Json rates = Json::array(), p50 = Json::array(), p99 = Json::array(), p999 = Json::array(), passes = Json::array();
  run.chart.title = fmt::format("messages: latency vs offered rate (max {:.0f} msg/s)", last_pass);
  run.chart.xlabel = "offered rate (messages/s)";
  run.chart.ylabel = "latency (ms)";
  run.chart.columns = {"rate", "p50_ms", "p99_ms", "pass"};
  run.chart.settings = {"set logscale y", fmt::format("set arrow from graph 0, first {0} to graph 1, first {0} nohead "
                                                      "dashtype 2 linecolor rgb 'red'",
                                                      limit)};
  for (const auto& p : points) {
    rates.push(p.rate);
    p50.push(round_to(p.p50, 3));
    p99.push(round_to(p.p99, 3));
    p999.push(round_to(p.p999, 3));
    passes.push(p.pass);
    run.chart.rows.push_back({p.rate, p.p50, p.p99, p.pass ? 1.0 : 0.0});
  }
  run.series["steps"]["rate"] = std::move(rates);
  run.series["steps"]["p50_ms"] = std::move(p50);
  run.series["steps"]["p99_ms"] = std::move(p99);
  run.series["steps"]["p99.9_ms"] = std::move(p999);
  run.series["steps"]["pass"] = std::move(passes);
  run.chart.plot = fmt::format(
      "plot DATA using 1:2 with linespoints linewidth 2 pointtype 7 title 'p50', "
      "DATA using 1:3 with linespoints linewidth 2 pointtype 5 title 'p99', "
      "NaN with lines dashtype 2 linecolor rgb 'red' title 'p99 limit {} ms'",
      limit);
  run.has_chart = true;

  run.summary = fmt::format("messages: max rate {:.0f} msg/s with p99 < {} ms ({} steps, ", last_pass, limit,
                            points.size());
  if (first_fail > 0) {
    run.summary += fmt::format("first failing {:.0f} msg/s)", first_fail);
  } else {
    run.summary += "no failure up to --max-rate)";
  }
  if (lost_connections) run.fail("connections were lost during the search");
}

}  // namespace

awaitable<void> run_messages(Run& run) {
  const auto& o = run.options;
  const int pairs = static_cast<int>(o.integer("pairs"));
  const int first = static_cast<int>(o.integer("first"));
  Traffic traffic(run, first, pairs);

  LoginPlan plan = plan_for_range(o.text("prefix"), first, 2 * pairs, static_cast<std::size_t>(o.integer("concurrency")));
  auto on_stanza = [&traffic](Client& c, const xml::Element& s) { traffic.on_stanza(c, s); };
  plan.on_stanza = on_stanza;
  plan.on_end = count_disconnects(run);
  // The relay forwards a sender's bytes to its receiver; receivers send nothing.
  auto floor_peer = [&traffic](int number) { return traffic.is_sender(number) ? traffic.receiver_of(number) : -1; };
  plan.floor_peer = floor_peer;

  run.meter.begin("login");
  LoginBatch batch;
  co_await login_many(run.env, plan, batch, run.errors);
  run.meter.end();
  if (batch.failed > 0 || !traffic.place(batch.clients)) {
    if (batch.fatal) {
      run.fail(*batch.fatal);
    } else {
      run.fail(fmt::format("{} of {} logins failed", batch.failed, 2 * pairs));
    }
    const std::chrono::milliseconds close_wait(1000);
    co_await close_all(run.env, batch.clients, close_wait);
    co_return;
  }
  // Let the logins' own traffic (presence) settle before measuring.
  const Clock::duration quiet = std::chrono::milliseconds(200);
  const Clock::time_point quiet_deadline = Clock::now() + std::chrono::seconds(2);
  co_await wait_quiet(run.env.io, traffic.last_activity_ns, quiet, quiet_deadline);

  if (o.flag("find-max")) {
    co_await find_max(run, traffic);
  } else {
    co_await fixed_rate(run, traffic);
  }

  run.meter.begin("close");
  const std::chrono::milliseconds close_wait(2000);
  co_await close_all(run.env, batch.clients, close_wait);
  run.meter.end();
}

}  // namespace herald::bench
