#include "storage/pg/pool.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>

namespace herald::storage::pg {

namespace {

// A coroutine queued in acquire(). Boost 1.74 has no channels, so the waiter parks on a
// timer that never expires on its own (or expires at the acquire timeout); release()
// hands it a slot directly and cancels the timer to wake it.
struct Waiter {
  explicit Waiter(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::optional<std::size_t> slot;
};

}  // namespace

struct Pool::State {
  State(asio::io_context& io, Options o) : io(io), options(std::move(o)) {}

  void release(std::size_t slot) noexcept {
    Connection& connection = *connections[slot];
    // A lease dropped mid-statement or mid-transaction (its coroutine threw or was
    // destroyed) leaves the session in an unknown state; closing it is the rollback.
    if (connection.busy() || connection.in_transaction()) connection.close();
    if (!waiters.empty()) {
      Waiter* next = waiters.front();
      waiters.pop_front();
      next->slot = slot;  // direct hand-off keeps the queue FIFO
      next->timer.cancel();
      return;
    }
    free_slots.push_back(slot);
  }

  asio::io_context& io;
  Options options;
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<std::size_t> free_slots;
  std::deque<Waiter*> waiters;
};

Pool::Lease::Lease(std::shared_ptr<State> state, std::size_t slot, Connection* connection) noexcept
    : state_(std::move(state)), slot_(slot), connection_(connection) {}

Pool::Lease::Lease(Lease&& other) noexcept
    : state_(std::move(other.state_)), slot_(other.slot_), connection_(other.connection_) {
  other.connection_ = nullptr;
}

Pool::Lease& Pool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    slot_ = other.slot_;
    connection_ = std::exchange(other.connection_, nullptr);
  }
  return *this;
}

Pool::Lease::~Lease() { release(); }

void Pool::Lease::release() noexcept {
  if (state_ && connection_) state_->release(slot_);
  state_.reset();
  connection_ = nullptr;
}

Pool::Pool(asio::io_context& io, Options options)
    : state_(std::make_shared<State>(io, std::move(options))) {
  std::size_t n = std::max<std::size_t>(1, state_->options.size);
  for (std::size_t i = 0; i < n; ++i) {
    state_->connections.push_back(std::make_unique<Connection>(io, state_->options.conninfo,
                                                               state_->options.connect_timeout));
    state_->free_slots.push_back(n - 1 - i);  // slot 0 on top: reuse warm connections first
  }
}

Pool::~Pool() = default;

std::size_t Pool::size() const noexcept { return state_->connections.size(); }
std::size_t Pool::idle() const noexcept { return state_->free_slots.size(); }
std::size_t Pool::waiting() const noexcept { return state_->waiters.size(); }

awaitable<Pool::Lease> Pool::acquire() {
  std::shared_ptr<State> state = state_;
  std::size_t slot = 0;
  if (!state->free_slots.empty()) {
    slot = state->free_slots.back();
    state->free_slots.pop_back();
  } else {
    Waiter waiter(state->io);
    waiter.timer.expires_after(state->options.acquire_timeout);
    state->waiters.push_back(&waiter);
    // Whatever ends this wait (timeout, or the frame destroyed while parked), the waiter
    // must leave the queue, and a slot handed to it but never used must go back.
    struct Leave {
      State& state;
      Waiter& waiter;
      bool taken = false;
      ~Leave() {
        auto it = std::find(state.waiters.begin(), state.waiters.end(), &waiter);
        if (it != state.waiters.end()) state.waiters.erase(it);
        if (waiter.slot && !taken) state.release(*waiter.slot);
      }
    } leave{*state, waiter};
    while (!waiter.slot) {
      boost::system::error_code ec;
      co_await waiter.timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (!ec && !waiter.slot) {
        throw Error("all " + std::to_string(state->connections.size()) +
                    " PostgreSQL connections stayed busy for " +
                    std::to_string(state->options.acquire_timeout.count()) + " ms");
      }
    }
    slot = *waiter.slot;
    leave.taken = true;
  }

  Lease lease(state, slot, state->connections[slot].get());
  if (!lease->reusable()) co_await lease->connect();  // throws; the lease returns the slot
  co_return lease;
}

awaitable<Result> Pool::query(std::string sql, std::vector<Param> params) {
  Lease lease = co_await acquire();
  co_return co_await lease->query(std::move(sql), std::move(params));
}

}  // namespace herald::storage::pg
