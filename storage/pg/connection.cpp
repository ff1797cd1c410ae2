#include "storage/pg/connection.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace herald::storage::pg {

namespace {

constexpr Oid bytea_oid = 17;  // pg_type.oid of bytea; stable since the catalog began

// libpq prints NOTICEs (e.g. "relation already exists, skipping") to stderr by default,
// which would interleave with the server's log and heraldctl's output.
void ignore_notice(void*, const char*) {}

std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// One wait on the socket (readable and/or writable) and optionally the connect deadline:
// whichever fires first completes the coroutine; the losers are cancelled by the waiter
// and complete into this no-op state. Boost 1.74 has no awaitable operators, hence this.
template <class Handler, class Ready>
struct WaitOp {
  explicit WaitOp(Handler h) : handler(std::move(h)) {}
  void complete(Ready ready) {
    if (done) return;
    done = true;
    Handler h = std::move(handler);
    std::move(h)(ready);
  }
  Handler handler;
  bool done = false;
};

}  // namespace

Connection::Connection(asio::io_context& io, std::string conninfo,
                       std::chrono::milliseconds connect_timeout)
    : io_(io), conninfo_(std::move(conninfo)), connect_timeout_(connect_timeout), deadline_(io) {}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  // Our duplicate first, so no wait is left registered on a socket libpq is closing.
  socket_.reset();
  socket_dev_ = 0;
  socket_ino_ = 0;
  if (conn_) {
    PQfinish(conn_);  // non-blocking connections only try to send Terminate
    conn_ = nullptr;
  }
  busy_ = false;
  prepared_.clear();  // they lived in the server session that just ended
}

bool Connection::is_open() const noexcept { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

bool Connection::in_transaction() const noexcept {
  return conn_ && PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

int Connection::backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_) : 0; }

bool Connection::reusable() noexcept {
  if (busy_ || !is_open() || PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
  // An idle connection has nothing to read unless the server said something: normally
  // that it is going away (FATAL + EOF). Drain it; libpq marks the connection bad at EOF.
  for (int rounds = 0; rounds < 8; ++rounds) {
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR))) break;
    if (!PQconsumeInput(conn_)) return false;
    PQisBusy(conn_);  // lets libpq parse what arrived (e.g. a ParameterStatus)
  }
  return is_open();
}

void Connection::check_alive() const {
  if (!conn_) throw Error("the PostgreSQL connection was closed");
}

void Connection::fail(std::string_view context) {
  std::string message(context);
  if (conn_) message += trimmed(PQerrorMessage(conn_));
  close();
  throw Error(message);
}

void Connection::bind_socket() {
  int fd = PQsocket(conn_);
  if (fd < 0) fail("PostgreSQL connection has no socket: ");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string reason = std::strerror(errno);
    close();
    throw Error("cannot inspect the PostgreSQL socket: " + reason);
  }
  if (socket_ && st.st_dev == socket_dev_ && st.st_ino == socket_ino_) return;

  socket_.reset();
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    std::string reason = std::strerror(errno);
    close();
    throw Error("cannot duplicate the PostgreSQL socket: " + reason);
  }
  asio::posix::stream_descriptor descriptor(io_);
  boost::system::error_code ec;
  descriptor.assign(copy, ec);
  if (ec) {
    ::close(copy);
    close();
    throw Error("cannot watch the PostgreSQL socket: " + ec.message());
  }
  socket_.emplace(std::move(descriptor));
  socket_dev_ = st.st_dev;
  socket_ino_ = st.st_ino;
}

awaitable<Connection::Ready> Connection::wait(bool read, bool write, bool with_deadline) {
  check_alive();
  // Asio's waits re-arm the descriptor (EPOLL_CTL_MOD), so readiness that already exists,
  // e.g. bytes libpq left in the kernel buffer, completes them at once.
  if (with_deadline && deadline_.expiry() <= asio::steady_timer::clock_type::now()) {
    co_return Ready::timeout;
  }

  auto initiation = [this, read, write, with_deadline](auto handler) {
    using Op = WaitOp<decltype(handler), Ready>;
    auto op = std::make_shared<Op>(std::move(handler));
    auto on = [op](Ready ready) {
      return [op, ready](const boost::system::error_code& ec) {
        op->complete(ec == asio::error::operation_aborted ? Ready::closed : ready);
      };
    };
    if (read) socket_->async_wait(asio::posix::stream_descriptor::wait_read, on(Ready::read));
    if (write) socket_->async_wait(asio::posix::stream_descriptor::wait_write, on(Ready::write));
    if (with_deadline) deadline_.async_wait(on(Ready::timeout));
  };
  Ready ready = co_await asio::async_initiate<decltype(use_awaitable), void(Ready)>(initiation,
                                                                                    use_awaitable);
  // The other waits are still queued; cancelling completes them into the spent WaitOp.
  boost::system::error_code ignored;
  if (socket_) socket_->cancel(ignored);
  if (with_deadline) deadline_.cancel();
  co_return ready;
}

awaitable<void> Connection::connect() {
  close();
  // client_encoding goes before the operator's conninfo (expanded from "dbname") so the
  // conninfo can still override it; Herald sends and expects UTF-8.
  const char* keywords[] = {"fallback_application_name", "client_encoding", "dbname", nullptr};
  const char* values[] = {"herald", "UTF8", conninfo_.c_str(), nullptr};
  conn_ = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  if (!conn_) throw Error("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(conn_) == CONNECTION_BAD) fail("cannot connect to PostgreSQL: ");
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);

  deadline_.expires_after(connect_timeout_);
  PostgresPollingStatusType polling = PGRES_POLLING_WRITING;  // as libpq's docs prescribe
  while (polling != PGRES_POLLING_OK) {
    if (polling == PGRES_POLLING_FAILED) fail("cannot connect to PostgreSQL: ");
    bind_socket();
    Ready ready = co_await wait(polling == PGRES_POLLING_READING, polling == PGRES_POLLING_WRITING,
                                /*with_deadline=*/true);
    if (ready == Ready::timeout) {
      close();
      throw Error("cannot connect to PostgreSQL: no answer within " +
                  std::to_string(connect_timeout_.count()) + " ms");
    }
    check_alive();
    polling = PQconnectPoll(conn_);
    if (polling == PGRES_POLLING_ACTIVE) polling = PGRES_POLLING_WRITING;  // unused by libpq
  }
  if (PQsetnonblocking(conn_, 1) != 0) fail("cannot make the PostgreSQL connection non-blocking: ");
  bind_socket();
}

awaitable<void> Connection::flush() {
  for (;;) {
    int pending = PQflush(conn_);
    if (pending == 0) co_return;
    if (pending < 0) fail("lost the connection to PostgreSQL while sending: ");
    // libpq's rule: while our send buffer is full, the server may itself be blocked
    // sending to us, so read as well as waiting for room to write.
    Ready ready = co_await wait(true, true, false);
    check_alive();
    if (ready == Ready::closed) throw Error("the PostgreSQL connection was closed");
    if (ready == Ready::read && !PQconsumeInput(conn_)) {
      fail("lost the connection to PostgreSQL while sending: ");
    }
  }
}

awaitable<Result> Connection::collect() {
  Result last;
  std::optional<QueryError> error;
  for (;;) {
    while (PQisBusy(conn_)) {
      Ready ready = co_await wait(true, false, false);
      check_alive();
      if (ready == Ready::closed) throw Error("the PostgreSQL connection was closed");
      if (!PQconsumeInput(conn_)) fail("lost the connection to PostgreSQL: ");
    }
    PGresult* raw = PQgetResult(conn_);
    if (!raw) break;
    Result result(raw);
    switch (PQresultStatus(raw)) {
      case PGRES_FATAL_ERROR: {
        // Keep the first error (later statements of a script are skipped anyway), but
        // keep draining: the connection is only reusable once libpq returns NULL.
        if (!error) {
          const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
          error.emplace(trimmed(PQresultErrorMessage(raw)), state ? state : "");
        }
        break;
      }
      case PGRES_COPY_IN:
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        // Herald never issues COPY; there is no way back to idle without driving it.
        close();
        throw Error("unexpected COPY from PostgreSQL");
      default: last = std::move(result); break;
    }
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    std::string message = error ? std::string(error->what()) : trimmed(PQerrorMessage(conn_));
    close();
    throw Error("lost the connection to PostgreSQL: " + message);
  }
  busy_ = false;  // idle again, even if the statement failed
  if (error) throw *error;
  co_return last;
}

awaitable<Result> Connection::query(std::string sql, std::vector<Param> params) {
  if (!is_open()) throw Error("the PostgreSQL connection is not open");
  if (busy_) throw std::logic_error("pg::Connection runs one statement at a time");
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  std::vector<Oid> types;
  values.reserve(params.size());
  for (const Param& p : params) {
    values.push_back(p.value ? p.value->c_str() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
    types.push_back(p.binary ? bytea_oid : 0);  // 0: let the server infer from context
  }
  const int n = static_cast<int>(params.size());
  const std::string* name = nullptr;
  if (auto it = prepared_.find(sql); it != prepared_.end()) {
    name = &it->second;
  } else if (prepared_.size() < kMaxPrepared) {
    std::string fresh = "h" + std::to_string(prepared_.size() + 1);
    busy_ = true;
    if (!PQsendPrepare(conn_, fresh.c_str(), sql.c_str(), n, types.data()))
      fail("cannot send a statement to PostgreSQL: ");
    co_await flush();
    co_await collect();  // throws (and caches nothing) if the server rejects the statement
    name = &prepared_.emplace(sql, std::move(fresh)).first->second;
  }
  busy_ = true;
  const int sent = name ? PQsendQueryPrepared(conn_, name->c_str(), n, values.data(), lengths.data(),
                                              formats.data(), /*resultFormat=*/0)
                        : PQsendQueryParams(conn_, sql.c_str(), n, types.data(), values.data(),
                                            lengths.data(), formats.data(), /*resultFormat=*/0);
  if (!sent) fail("cannot send a query to PostgreSQL: ");
  co_await flush();
  co_return co_await collect();
}

awaitable<Result> Connection::execute(std::string sql) {
  if (!is_open()) throw Error("the PostgreSQL connection is not open");
  if (busy_) throw std::logic_error("pg::Connection runs one statement at a time");
  busy_ = true;
  if (!PQsendQuery(conn_, sql.c_str())) fail("cannot send a query to PostgreSQL: ");
  co_await flush();
  co_return co_await collect();
}

awaitable<void> transaction(Connection& connection,
                            std::function<awaitable<void>(Connection&)> body) {
  co_await connection.query("BEGIN");
  std::exception_ptr failure;
  try {
    co_await body(connection);
    co_await connection.query("COMMIT");
    co_return;
  } catch (...) {
    failure = std::current_exception();
  }
  // No co_await inside a handler, hence the detour through failure.
  if (connection.is_open() && connection.in_transaction() && !connection.busy()) {
    try {
      co_await connection.query("ROLLBACK");
    } catch (...) {
      connection.close();  // the server rolls back when the session ends
    }
  }
  std::rethrow_exception(failure);
}

}  // namespace herald::storage::pg
