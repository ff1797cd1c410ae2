// Running many clients at once: logins with bounded concurrency, closing them all,
// waiting for a condition with a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "tools/bench/gen/client.hpp"
#include "tools/bench/gen/stats.hpp"

namespace herald::bench {

// Counts outstanding tasks; one coroutine waits until all have arrived.
class Latch {
 public:
  Latch(asio::io_context& io, std::size_t count) : count_(count), timer_(io) {}
  void arrive();
  awaitable<void> wait();

 private:
  std::size_t count_;
  asio::steady_timer timer_;
};

awaitable<void> sleep_for(asio::io_context& io, Clock::duration d);

// Polls `done` until it is true (returns true) or the deadline passes (returns false).
// Polling keeps scenarios simple; measurements never depend on it, since arrival times
// are taken where the stanzas are parsed.
template <class Pred>
awaitable<bool> wait_until(asio::io_context& io, Pred& done, Clock::time_point deadline,
                           Clock::duration poll = std::chrono::milliseconds(2)) {
  asio::steady_timer timer(io);
  for (;;) {
    if (done()) co_return true;
    const auto now = Clock::now();
    if (now >= deadline) co_return false;
    timer.expires_at(std::min(now + poll, deadline));
    co_await timer.async_wait(use_awaitable);
  }
}

// Waits until nothing has been received for `quiet` (the clients' handlers update
// `last_activity_ns`), or the deadline; returns false on the deadline.
awaitable<bool> wait_quiet(asio::io_context& io, const std::int64_t& last_activity_ns, Clock::duration quiet,
                           Clock::time_point deadline);

// Which clients to log in and how.
struct LoginPlan {
  std::vector<int> numbers;        // client numbers (also floor ids)
  std::vector<std::string> users;  // localparts, one per number
  std::size_t concurrency = 100;
  bool presence = true;
  std::function<int(int)> floor_peer;  // --tls floor: number -> peer number
  Client::StanzaHandler on_stanza;
  Client::EndHandler on_end;
  std::string error_kind = "login";  // where failures are counted
};

// Users PREFIX<first>..PREFIX<first+count-1>.
LoginPlan plan_for_range(const std::string& prefix, int first, int count, std::size_t concurrency);

struct LoginBatch {
  std::vector<std::shared_ptr<Client>> clients;  // established clients, in completion order
  std::vector<double> latency_ms;                // per established client, same order
  std::vector<std::int64_t> established_ns;      // when each login ended, same order
  std::size_t failed = 0;
  std::optional<std::string> fatal;  // a failure every login shares: the batch stopped early
};

// Logs in the plan's clients with at most plan.concurrency logins in flight; each one
// is limited by the target's login timeout. Failures are counted in `errors`.
awaitable<void> login_many(Env& env, const LoginPlan& plan, LoginBatch& out, Errors& errors);

// Closes every client's stream (see Client::close), all at once.
awaitable<void> close_all(Env& env, const std::vector<std::shared_ptr<Client>>& clients,
                          std::chrono::milliseconds wait);

// Closes the socket of every client ever started that is still open.
void abort_all(Env& env);

}  // namespace herald::bench
