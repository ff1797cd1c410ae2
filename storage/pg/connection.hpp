// One PostgreSQL connection driven by libpq in non-blocking mode on an Asio io_context:
// libpq builds and parses the protocol, Asio tells us when its socket is ready. Nothing
// here blocks the thread, so a worker keeps serving its sessions while queries run.
//
// Not thread-safe: a Connection lives on one io_context run by one thread, and runs one
// statement at a time (the Pool hands it to one coroutine at a time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/net/asio.hpp"
#include "storage/pg/result.hpp"
#include "storage/stores.hpp"

struct pg_conn;

namespace herald::storage::pg {

// A statement failed on the server. The connection is still usable (unless the server
// closed it); sqlstate lets a store recognise e.g. unique_violation ("23505").
struct QueryError : Error {
  QueryError(const std::string& message, std::string state)
      : Error(message), sqlstate(std::move(state)) {}
  std::string sqlstate;
};

// A statement parameter ($1, $2, ...). Text by default; bytea goes in binary format so
// arbitrary bytes (NUL included) arrive untouched without escaping.
struct Param {
  std::optional<std::string> value;  // nullopt is SQL NULL
  bool binary = false;

  Param(std::string text) : value(std::move(text)) {}
  Param(std::string_view text) : value(std::string(text)) {}
  Param(const char* text) : value(std::string(text)) {}
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
  Param(T number) : value(std::to_string(number)) {}

  static Param bytea(std::string raw) {
    Param p(std::move(raw));
    p.binary = true;
    return p;
  }
  static Param null() {
    Param p(std::string{});
    p.value.reset();
    return p;
  }
};

// The parameter list for query(): pg::params(domain, username, Param::bytea(salt)).
// Preferred over a braced list at the call site: GCC 12 miscompiles (rejects) braced
// initializer lists of class type inside co_await expressions.
template <class... Args>
std::vector<Param> params(Args&&... args) {
  std::vector<Param> list;
  list.reserve(sizeof...(args));
  (list.emplace_back(std::forward<Args>(args)), ...);
  return list;
}

class Connection {
 public:
  // conninfo: a libpq connection string or URI. connect_timeout bounds connect() as a
  // whole (libpq's own connect_timeout only applies to its blocking calls).
  Connection(asio::io_context& io, std::string conninfo, std::chrono::milliseconds connect_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // (Re)connects, dropping any previous session. Throws storage::Error with libpq's
  // message on failure, or after connect_timeout.
  awaitable<void> connect();
  void close() noexcept;
  bool is_open() const noexcept;
  // Open, idle, outside any transaction and not closed by the server meanwhile: safe to
  // hand to the next user. Reads anything the server sent while idle (that is how a
  // terminated backend or a server restart is noticed before the next query fails).
  bool reusable() noexcept;
  bool in_transaction() const noexcept;
  // True while a statement is in flight (or was abandoned mid-flight).
  bool busy() const noexcept { return busy_; }
  int backend_pid() const noexcept;

  // One parameterised statement ($1..). Throws QueryError for a statement the server
  // rejected, storage::Error if the connection failed (it is closed then).
  // Each distinct statement text is prepared once per connection (the first use costs
  // one more round trip) and executed by name afterwards: PostgreSQL then neither parses
  // nor plans it again (docs/performance.md, login rate). At most kMaxPrepared
  // statements per connection; beyond that they run unprepared.
  awaitable<Result> query(std::string sql, std::vector<Param> params = {});
  static constexpr std::size_t kMaxPrepared = 256;
  // Several statements without parameters in one round trip (simple query protocol),
  // for trusted SQL only: the embedded migrations. Returns the last statement's result.
  awaitable<Result> execute(std::string sql);

 private:
  enum class Ready { read, write, timeout, closed };

  awaitable<Ready> wait(bool read, bool write, bool with_deadline);
  awaitable<void> flush();
  awaitable<Result> collect();
  void bind_socket();
  void check_alive() const;
  [[noreturn]] void fail(std::string_view context);

  asio::io_context& io_;
  std::string conninfo_;
  std::chrono::milliseconds connect_timeout_;
  asio::steady_timer deadline_;
  pg_conn* conn_ = nullptr;
  // A dup() of libpq's socket: libpq keeps ownership of (and closes) its own descriptor,
  // and the socket may change while connecting (next host, SSL/GSS fallback). The
  // device/inode pair identifies the socket itself, since a new socket can reuse an fd
  // number.
  std::optional<asio::posix::stream_descriptor> socket_;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  bool busy_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // statement text -> name
};

// Runs body between BEGIN and COMMIT. If body (or COMMIT) throws, the transaction is
// rolled back (or the connection dropped, which rolls it back too) and the exception
// propagates.
awaitable<void> transaction(Connection& connection,
                            std::function<awaitable<void>(Connection&)> body);

}  // namespace herald::storage::pg
