#include "tools/bench/gen/driver.hpp"

#include <fmt/format.h>

namespace herald::bench {

void Latch::arrive() {
  if (count_ > 0 && --count_ == 0) timer_.cancel();
}

awaitable<void> Latch::wait() {
  while (count_ > 0) {
    boost::system::error_code ec;
    timer_.expires_at(asio::steady_timer::time_point::max());
    co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

awaitable<void> sleep_for(asio::io_context& io, Clock::duration d) {
  asio::steady_timer timer(io);
  timer.expires_after(d);
  co_await timer.async_wait(use_awaitable);
}

awaitable<bool> wait_quiet(asio::io_context& io, const std::int64_t& last_activity_ns, Clock::duration quiet,
                           Clock::time_point deadline) {
  const std::int64_t quiet_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(quiet).count();
  auto is_quiet = [&] { return now_ns() - last_activity_ns >= quiet_ns; };
  const Clock::duration poll = std::chrono::milliseconds(10);
  co_return co_await wait_until(io, is_quiet, deadline, poll);
}

LoginPlan plan_for_range(const std::string& prefix, int first, int count, std::size_t concurrency) {
  LoginPlan plan;
  plan.concurrency = concurrency;
  for (int i = 0; i < count; ++i) {
    plan.numbers.push_back(first + i);
    plan.users.push_back(fmt::format("{}{}", prefix, first + i));
  }
  return plan;
}

namespace {

struct BatchState {
  std::size_t next = 0;  // next plan entry to start
};

awaitable<void> login_worker(Env& env, const LoginPlan& plan, LoginBatch& out, Errors& errors, BatchState& state,
                             Latch& latch) {
  while (state.next < plan.numbers.size() && !out.fatal) {
    const std::size_t slot = state.next++;
    const int number = plan.numbers[slot];
    auto client = std::make_shared<Client>(env, number, plan.users[slot]);
    client->set_handlers(plan.on_stanza, plan.on_end);
    LoginOptions options;
    options.presence = plan.presence;
    if (plan.floor_peer) options.floor_peer = plan.floor_peer(number);

    const std::int64_t started = now_ns();
    std::string failure;
    bool fatal = false;
    try {
      co_await client->login(options);
    } catch (const LoginError& e) {
      failure = e.what();
      fatal = e.fatal();
    } catch (const std::exception& e) {
      failure = fmt::format("{}: {}", plan.users[slot], e.what());
    }
    if (failure.empty()) {
      const std::int64_t ended = now_ns();
      out.clients.push_back(std::move(client));
      out.latency_ms.push_back(ns_to_ms(ended - started));
      out.established_ns.push_back(ended);
    } else {
      ++out.failed;
      errors.add(plan.error_kind, failure);
      if (fatal && !out.fatal) out.fatal = failure;
    }
  }
  latch.arrive();
}

awaitable<void> close_one(std::shared_ptr<Client> client, std::chrono::milliseconds wait, Latch& latch) {
  co_await client->close(wait);
  latch.arrive();
}

}  // namespace

awaitable<void> login_many(Env& env, const LoginPlan& plan, LoginBatch& out, Errors& errors) {
  const std::size_t workers = std::max<std::size_t>(1, std::min(plan.concurrency, plan.numbers.size()));
  if (plan.numbers.empty()) co_return;
  BatchState state;
  Latch latch(env.io, workers);
  for (std::size_t i = 0; i < workers; ++i) {
    asio::co_spawn(env.io, login_worker(env, plan, out, errors, state, latch), asio::detached);
  }
  co_await latch.wait();
}

awaitable<void> close_all(Env& env, const std::vector<std::shared_ptr<Client>>& clients,
                          std::chrono::milliseconds wait) {
  Latch latch(env.io, clients.size());
  for (const auto& c : clients) {
    if (c) {
      asio::co_spawn(env.io, close_one(c, wait, latch), asio::detached);
    } else {
      latch.arrive();
    }
  }
  co_await latch.wait();
}

void abort_all(Env& env) {
  for (auto& weak : env.clients) {
    if (auto c = weak.lock()) c->abort();
  }
  env.clients.clear();
}

}  // namespace herald::bench
