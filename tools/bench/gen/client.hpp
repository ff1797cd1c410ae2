// One benchmark client connection: TCP from a chosen source address, TLS (STARTTLS or
// direct), SASL (PLAIN or SCRAM without channel binding), resource binding, optional
// session and initial presence; then a reader that answers pings and hands stanzas to
// the scenario, and a writer that batches whatever is queued into one write.
//
// Only standard XMPP is used, and the client tolerates what servers legitimately do
// differently (extra features, stanzas arriving during login, SCRAM's server signature
// in a challenge rather than in <success/>...). Bad server output ends the connection
// with a reason, never the process.
//
// Everything runs on one single-threaded io_context, so nothing here locks.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "server/net/asio.hpp"
#include "server/sasl/crypto.hpp"
#include "server/xml/stream_parser.hpp"

namespace herald::bench {

enum class TlsMode { starttls, direct, floor };
enum class Mech { plain, scram_sha1, scram_sha256 };

std::string_view mech_name(Mech);

// Where and how every client connects.
struct Target {
  asio::ip::tcp::endpoint server;
  std::string domain;
  std::string password;
  TlsMode tls = TlsMode::starttls;
  Mech mech = Mech::scram_sha256;
  std::vector<asio::ip::address> sources;  // empty: let the kernel choose
  std::chrono::milliseconds login_timeout{30000};
};

// What SCRAM derives from SaltedPassword. Real clients keep these per account (the
// server's salt and iteration count rarely change), so a repeated login of the same
// account costs the client a few HMACs instead of a PBKDF2 run: the benchmark then
// measures the server's login cost, not the generator's.
struct ScramKeys {
  std::string client_key;
  std::string stored_key;
  std::string server_key;
};

class ScramCache {
 public:
  const ScramKeys& get(sasl::Hash hash, const std::string& password, const std::string& salt,
                       std::uint32_t iterations);
  std::size_t derivations() const { return derivations_; }  // PBKDF2 runs so far

 private:
  std::map<std::tuple<int, std::string, std::string, std::uint32_t>, ScramKeys> keys_;
  std::size_t derivations_ = 0;
};

class Client;

// Shared by every client of a run.
struct Env {
  explicit Env(Target target);

  asio::ssl::context tls;  // before io: destroyed after it, once no stream uses it
  asio::io_context io{1};  // one thread: no locking inside Asio either
  Target target;
  ScramCache scram;
  std::size_t next_source = 0;
  // Every client that started a login, so the end of a run can close any left open.
  std::vector<std::weak_ptr<Client>> clients;
};

// A login that did not complete. fatal(): every other login would fail the same way
// (the server does not offer the mechanism or STARTTLS), so there is no point going on.
class LoginError : public std::runtime_error {
 public:
  explicit LoginError(const std::string& what, bool fatal = false) : std::runtime_error(what), fatal_(fatal) {}
  bool fatal() const { return fatal_; }

 private:
  bool fatal_;
};

struct LoginOptions {
  bool presence = true;  // send initial presence as the last step
  int floor_peer = -1;   // --tls floor: the connection this one's bytes go to
};

class Client : public xml::StreamHandler, public std::enable_shared_from_this<Client> {
 public:
  // Every stanza other than iq get/set (which the client answers itself).
  using StanzaHandler = std::function<void(Client&, const xml::Element&)>;
  // The connection ended without our asking (stream error, closed, bad XML...).
  using EndHandler = std::function<void(Client&, const std::string& why)>;

  // `number` identifies the client to the scenario (and to the floor relay); `user` is
  // the localpart.
  Client(Env& env, int number, std::string user);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int number() const { return number_; }
  const std::string& user() const { return user_; }
  std::string full_jid() const;  // user@domain/bench

  // Before login(): stanzas that arrive during the login already go to the handler.
  void set_handlers(StanzaHandler on_stanza, EndHandler on_end);

  // Connects and logs in, within the target's login timeout. Throws LoginError naming
  // the user, the step and the reason. After it returns the client is established: it
  // reads continuously and send() writes.
  awaitable<void> login(LoginOptions options);

  // Queues bytes for the server; returns false (and drops them) once the connection has
  // ended or its stream was closed.
  bool send(std::string_view xml);
  // Bytes queued or being written, not yet taken by the kernel: grows when the server
  // stops reading.
  std::size_t backlog() const { return out_.size() + writing_buf_.size(); }

  // Closes the stream cleanly: </stream:stream>, then waits up to `wait` for the
  // server's close before closing the socket.
  awaitable<void> close(std::chrono::milliseconds wait);
  // Closes the socket now.
  void abort();

  bool established() const { return established_; }
  bool ended() const { return ended_; }

 private:
  // xml::StreamHandler
  void on_stream_open(xml::Element header) override;
  void on_stanza(xml::Element stanza) override;
  void on_stream_close() override;

  awaitable<void> negotiate(LoginOptions options);
  awaitable<void> connect();
  awaitable<void> handshake();
  awaitable<void> open_stream();
  awaitable<xml::Element> next_element();
  awaitable<xml::Element> expect_features();
  awaitable<xml::Element> await_iq(std::string_view id);
  awaitable<void> authenticate(const xml::Element& features);
  awaitable<void> authenticate_scram(sasl::Hash hash);
  awaitable<void> write_now(std::string bytes);
  awaitable<std::size_t> read_some();

  // Both take a reference to the client, which keeps it alive while they run.
  awaitable<void> reader(std::shared_ptr<Client> self);
  awaitable<void> writer(std::shared_ptr<Client> self);
  void start_writer();

  void new_parser();
  void dispatch(const xml::Element& stanza);  // established: pings, errors, handler
  void answer_iq(const xml::Element& iq);
  void end(const std::string& why);           // the connection is over, for whatever reason
  void close_socket();

  Env& env_;
  int number_;
  std::string user_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  asio::steady_timer deadline_;  // the login timeout
  asio::steady_timer waiter_;    // close(): cancelled when the connection ends

  std::unique_ptr<xml::StreamParser> parser_;
  bool parser_suspended_ = false;
  std::deque<xml::Element> pending_;  // during login: elements not yet taken
  std::array<char, 4096> buffer_{};

  std::string out_;          // queued for the writer
  std::string writing_buf_;  // being written
  bool writing_ = false;

  StanzaHandler on_stanza_;
  EndHandler on_end_;
  std::string phase_ = "connect";  // login step, for error messages
  bool tls_ = false;
  bool peer_closed_ = false;   // the server's </stream:stream>
  bool established_ = false;
  bool closing_ = false;       // we are closing: the end is not an error
  bool output_closed_ = false; // our </stream:stream> is queued
  bool ended_ = false;
  bool timed_out_ = false;
};

}  // namespace herald::bench
