// A fixed set of PostgreSQL connections bound to one io_context (one per worker), handed
// to one coroutine at a time. When all are busy, acquire() queues FIFO until a lease is
// returned. Connections open lazily and a broken one is reopened on its next use, so a
// database restart costs the statements in flight, not the server.
//
// Not thread-safe: use a Pool only from the thread running its io_context. Leases keep
// the pool's internals alive, so a coroutine frame destroyed late (e.g. when the
// io_context is torn down) does not touch freed memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/result.hpp"

namespace herald::storage::pg {

class Pool {
 public:
  struct Options {
    std::string conninfo;  // libpq connection string or URI
    std::size_t size = 2;  // connections; at least 1
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
    // How long acquire() waits for a busy pool before failing, so a stuck database
    // turns into errors instead of an ever-growing queue of waiting sessions.
    std::chrono::milliseconds acquire_timeout{std::chrono::seconds(30)};
  };

  struct State;

  // Exclusive use of one connection until destroyed. A connection returned in the middle
  // of a statement or transaction (its user threw) is closed, which rolls it back.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    Connection& operator*() const noexcept { return *connection_; }
    Connection* operator->() const noexcept { return connection_; }

   private:
    friend class Pool;
    Lease(std::shared_ptr<State> state, std::size_t slot, Connection* connection) noexcept;
    void release() noexcept;

    std::shared_ptr<State> state_;
    std::size_t slot_ = 0;
    Connection* connection_ = nullptr;
  };

  Pool(asio::io_context& io, Options options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A connected connection. Throws storage::Error if connecting fails or times out, or
  // if none became free within acquire_timeout.
  awaitable<Lease> acquire();

  // Shorthands: acquire, run one statement, release.
  awaitable<Result> query(std::string sql, std::vector<Param> params = {});

  std::size_t size() const noexcept;
  std::size_t idle() const noexcept;     // connections not leased right now
  std::size_t waiting() const noexcept;  // coroutines queued in acquire()

 private:
  std::shared_ptr<State> state_;
};

}  // namespace herald::storage::pg
