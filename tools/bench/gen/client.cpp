#include "tools/bench/gen/client.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "server/xml/serializer.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::bench {
namespace {


// The floor relay carries no XMPP: the receiving parser is primed with this header so
// forwarded stanzas parse exactly as they would inside a real stream.
constexpr std::string_view kFloorHeader =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

// A server may send stanzas larger than Herald's limits (a roster of thousands of items
// is one iq); the generator trusts the server under test with its memory.
xml::Limits client_limits() {
  xml::Limits limits;
  limits.max_stanza_bytes = 64 * 1024 * 1024;
  limits.max_depth = 64;
  limits.max_attributes = 256;
  return limits;
}

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

// "<failure><not-authorized/><text>..</text></failure>" -> "not-authorized (..)"; also
// for stream errors and stanza errors (the first child other than <text/>).
std::string describe_condition(const xml::Element& e) {
  std::string condition, text;
  for (const auto* child : e.elements()) {
    if (child->name() == "text") {
      text = child->text();
    } else if (condition.empty()) {
      condition = child->name();
    }
  }
  if (condition.empty()) condition = "no condition";
  return text.empty() ? condition : fmt::format("{} ({})", condition, text);
}

std::string describe_stanza_error(const xml::Element& stanza) {
  for (const auto* child : stanza.elements()) {
    if (child->name() == "error") return describe_condition(*child);
  }
  return "no error element";
}

std::string describe(const boost::system::error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) return "connection closed by the server";
  if (ec == asio::error::connection_reset) return "connection reset by the server";
  return ec.message();
}

// RFC 5802 saslname: ',' and '=' are escaped.
std::string sasl_name(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

// The value of attribute `key` ("r", "s", "i", "v", "e") in a SCRAM message, or nullopt.
std::optional<std::string> scram_attr(std::string_view message, char key) {
  std::size_t pos = 0;
  while (pos <= message.size()) {
    auto comma = message.find(',', pos);
    if (comma == std::string_view::npos) comma = message.size();
    auto part = message.substr(pos, comma - pos);
    if (part.size() >= 2 && part[0] == key && part[1] == '=') return std::string(part.substr(2));
    pos = comma + 1;
  }
  return std::nullopt;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a);
  for (std::size_t i = 0; i < out.size() && i < b.size(); ++i) out[i] = static_cast<char>(out[i] ^ b[i]);
  return out;
}

std::string auth_xml(std::string_view mech, std::string_view payload) {
  return fmt::format("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{}'>{}</auth>", mech,
                     payload.empty() ? std::string("=") : sasl::base64_encode(payload));
}

std::string response_xml(std::string_view payload) {
  if (payload.empty()) return "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
  return fmt::format("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
                     sasl::base64_encode(payload));
}

// SASL data in an element: base64, where "=" or nothing means empty.
std::string sasl_data(const xml::Element& e) {
  const std::string text = trim(e.text());
  if (text.empty() || text == "=") return {};
  auto decoded = sasl::base64_decode(text);
  if (!decoded) throw LoginError(fmt::format("invalid base64 in <{}/> from the server", e.name()));
  return *decoded;
}

bool is_sasl(const xml::Element& e, std::string_view name) { return e.name() == name && e.ns() == ns::sasl; }

}  // namespace

std::string_view mech_name(Mech m) {
  switch (m) {
    case Mech::plain: return "PLAIN";
    case Mech::scram_sha1: return "SCRAM-SHA-1";
    case Mech::scram_sha256: return "SCRAM-SHA-256";
  }
  return "?";
}

// --- ScramCache / Env ---------------------------------------------------------------------

const ScramKeys& ScramCache::get(sasl::Hash hash, const std::string& password, const std::string& salt,
                                 std::uint32_t iterations) {
  auto key = std::make_tuple(static_cast<int>(hash), password, salt, iterations);
  auto it = keys_.find(key);
  if (it != keys_.end()) return it->second;
  ++derivations_;
  // SASLprep of the password is the identity for the ASCII passwords benchmarks use.
  const std::string salted = sasl::pbkdf2(hash, password, salt, iterations);
  ScramKeys k;
  k.client_key = sasl::hmac(hash, salted, "Client Key");
  k.stored_key = sasl::digest(hash, k.client_key);
  k.server_key = sasl::hmac(hash, salted, "Server Key");
  return keys_.emplace(std::move(key), std::move(k)).first->second;
}

Env::Env(Target t) : tls(asio::ssl::context::tls_client), target(std::move(t)) {
  SSL_CTX* ctx = tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Benchmark certificates are self-signed: no verification (this is not a real client).
  tls.set_verify_mode(asio::ssl::verify_none);
  // Idle connections then hold no OpenSSL read/write buffers: tens of thousands of
  // connections fit in the generator's memory.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

// --- Client: set-up -------------------------------------------------------------------------

Client::Client(Env& env, int number, std::string user)
    : env_(env),
      number_(number),
      user_(std::move(user)),
      stream_(env.io, env.tls),
      deadline_(env.io),
      waiter_(env.io) {}

Client::~Client() = default;

std::string Client::full_jid() const { return fmt::format("{}@{}/bench", user_, env_.target.domain); }

void Client::set_handlers(StanzaHandler on_stanza, EndHandler on_end) {
  on_stanza_ = std::move(on_stanza);
  on_end_ = std::move(on_end);
}

void Client::new_parser() {
  parser_ = std::make_unique<xml::StreamParser>(*this, client_limits());
  parser_suspended_ = false;
  pending_.clear();
  peer_closed_ = false;
}

// --- login --------------------------------------------------------------------------------

awaitable<void> Client::login(LoginOptions options) {
  auto self = shared_from_this();
  env_.clients.push_back(self);
  std::weak_ptr<Client> weak = self;
  // The timeout closes the socket: whatever the login awaits then fails at once.
  deadline_.expires_after(env_.target.login_timeout);
  deadline_.async_wait([weak](const boost::system::error_code& ec) {
    auto client = weak.lock();
    if (ec || !client || client->established_) return;
    client->timed_out_ = true;
    client->close_socket();
  });

  std::string failure;
  bool fatal = false;
  try {
    co_await negotiate(options);
  } catch (const LoginError& e) {
    failure = e.what();
    fatal = e.fatal();
  } catch (const boost::system::system_error& e) {
    failure = describe(e.code());
    // Nobody listening: every other login would fail the same way.
    if (e.code() == asio::error::connection_refused) {
      failure = fmt::format("connection refused: is the server listening on {}:{}? (--host, --port)",
                            env_.target.server.address().to_string(), env_.target.server.port());
      fatal = true;
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  deadline_.cancel();
  if (timed_out_) {
    failure = fmt::format("timeout after {} s", env_.target.login_timeout.count() / 1000.0);
    fatal = false;
  }
  if (!failure.empty()) {
    ended_ = true;
    close_socket();
    throw LoginError(fmt::format("{}: {}: {}", user_, phase_, failure), fatal);
  }

  established_ = true;
  asio::co_spawn(env_.io, reader(self), asio::detached);
  start_writer();  // whatever was queued during the login (ping answers)
}

awaitable<void> Client::negotiate(LoginOptions options) {
  co_await connect();
  const TlsMode mode = env_.target.tls;
  if (mode == TlsMode::direct || mode == TlsMode::floor) co_await handshake();

  if (mode == TlsMode::floor) {
    phase_ = "floor";
    co_await write_now(fmt::format("<floor id='{}' peer='{}'/>", number_, options.floor_peer));
    new_parser();
    if (parser_->feed(kFloorHeader) == xml::Status::error) throw LoginError("cannot parse the floor header");
    co_return;
  }

  phase_ = "stream header";
  co_await open_stream();
  xml::Element features = co_await expect_features();

  if (mode == TlsMode::starttls) {
    phase_ = "STARTTLS";
    if (!features.child("starttls", ns::tls)) {
      throw LoginError("the server offers no STARTTLS; use --tls direct with its direct-TLS port", true);
    }
    co_await write_now("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    const xml::Element reply = co_await next_element();
    if (reply.name() != "proceed" || reply.ns() != ns::tls) {
      throw LoginError(fmt::format("STARTTLS refused (<{}/>)", reply.name()));
    }
    // The parser is suspended after <proceed/>: anything after it belonged to the
    // plaintext stream and goes with the old parser (open_stream makes a new one).
    co_await handshake();
    co_await open_stream();
    features = co_await expect_features();
  }

  phase_ = "SASL";
  co_await authenticate(features);
  co_await open_stream();  // the stream restarts after <success/> (RFC 6120 §6.4.6)
  features = co_await expect_features();

  phase_ = "bind";
  co_await write_now(
      "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource>"
      "</bind></iq>");
  const xml::Element bound = co_await await_iq("b1");
  if (bound.attr_or("type") != "result") {
    throw LoginError(fmt::format("resource binding failed: {}", describe_stanza_error(bound)));
  }

  // RFC 3921 sessions: only servers that still require one list it without <optional/>.
  if (const auto* session = features.child("session", ns::session); session && !session->child("optional", ns::session)) {
    phase_ = "session";
    co_await write_now("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    const xml::Element started = co_await await_iq("s1");
    if (started.attr_or("type") != "result") {
      throw LoginError(fmt::format("session establishment failed: {}", describe_stanza_error(started)));
    }
  }

  if (options.presence) {
    phase_ = "presence";
    co_await write_now("<presence/>");
  }
}

awaitable<void> Client::connect() {
  phase_ = "connect";
  auto& socket = stream_.next_layer();
  const auto& target = env_.target;
  socket.open(target.server.protocol());
  if (!target.sources.empty()) {
    const auto& source = target.sources[env_.next_source++ % target.sources.size()];
    // Without this, bind() picks the local port before connect() knows the destination,
    // limiting each source address to one connection per ephemeral port regardless of
    // the server's address; with it the port is chosen at connect() (Linux >= 4.2).
    const int one = 1;
    ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    socket.bind(asio::ip::tcp::endpoint(source, 0));
  }
  co_await socket.async_connect(target.server, use_awaitable);
  socket.set_option(asio::ip::tcp::no_delay(true));
}

awaitable<void> Client::handshake() {
  phase_ = "TLS handshake";
  SSL_set_tlsext_host_name(stream_.native_handle(), env_.target.domain.c_str());
  co_await stream_.async_handshake(asio::ssl::stream_base::client, use_awaitable);
  tls_ = true;
}

awaitable<void> Client::open_stream() {
  new_parser();
  co_await write_now(fmt::format(
      "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams'>",
      xml::escape_attr(env_.target.domain)));
}

awaitable<void> Client::write_now(std::string bytes) {
  if (tls_) {
    co_await asio::async_write(stream_, asio::buffer(bytes), use_awaitable);
  } else {
    co_await asio::async_write(stream_.next_layer(), asio::buffer(bytes), use_awaitable);
  }
}

awaitable<std::size_t> Client::read_some() {
  if (tls_) co_return co_await stream_.async_read_some(asio::buffer(buffer_), use_awaitable);
  co_return co_await stream_.next_layer().async_read_some(asio::buffer(buffer_), use_awaitable);
}

// During the login the parser stops after each element, so the bytes after <proceed/>
// or <success/> are never parsed by the old stream's parser.
awaitable<xml::Element> Client::next_element() {
  for (;;) {
    if (!pending_.empty()) {
      xml::Element e = std::move(pending_.front());
      pending_.pop_front();
      if (e.name() == "error" && e.ns() == ns::streams) {
        throw LoginError(fmt::format("stream error: {}", describe_condition(e)));
      }
      co_return e;
    }
    if (peer_closed_) throw LoginError("the server closed the stream");
    xml::Status status;
    if (parser_suspended_) {
      status = parser_->resume();
    } else {
      const std::size_t n = co_await read_some();
      status = parser_->feed(std::string_view(buffer_.data(), n));
    }
    parser_suspended_ = status == xml::Status::suspended;
    if (status == xml::Status::error) {
      throw LoginError(fmt::format("bad XML from the server: {}", parser_->error()->detail));
    }
  }
}

awaitable<xml::Element> Client::expect_features() {
  xml::Element e = co_await next_element();
  if (e.name() != "features" || e.ns() != ns::streams) {
    throw LoginError(fmt::format("expected <stream:features/>, got <{}/>", e.name()));
  }
  co_return e;
}

// The reply to our iq `id`; anything else arriving meanwhile is handled as usual.
awaitable<xml::Element> Client::await_iq(std::string_view id) {
  for (;;) {
    xml::Element e = co_await next_element();
    if (e.name() == "iq" && e.attr_or("id") == id) {
      const auto type = e.attr_or("type");
      if (type == "result" || type == "error") co_return e;
    }
    dispatch(e);
  }
}

awaitable<void> Client::authenticate(const xml::Element& features) {
  const Mech mech = env_.target.mech;
  const std::string_view wanted = mech_name(mech);
  std::vector<std::string> offered;
  if (const auto* mechanisms = features.child("mechanisms", ns::sasl)) {
    for (const auto* m : mechanisms->elements()) {
      if (m->name() == "mechanism") offered.push_back(trim(m->text()));
    }
  }
  if (std::find(offered.begin(), offered.end(), wanted) == offered.end()) {
    // (No ?: on strings here: GCC 12 miscompiles class temporaries of ?: in coroutines.)
    std::string list;
    for (const auto& m : offered) {
      if (!list.empty()) list += ", ";
      list += m;
    }
    if (offered.empty()) throw LoginError("the server offers no SASL mechanism", true);
    throw LoginError(fmt::format("the server offers no {} (it offers {}); use --mech with one of those", wanted, list),
                     true);
  }

  if (mech == Mech::plain) {
    std::string payload;
    payload += '\0';
    payload += user_;
    payload += '\0';
    payload += env_.target.password;
    co_await write_now(auth_xml(wanted, payload));
    const xml::Element reply = co_await next_element();
    if (is_sasl(reply, "failure")) throw LoginError(fmt::format("authentication failed: {}", describe_condition(reply)));
    if (!is_sasl(reply, "success")) throw LoginError(fmt::format("unexpected <{}/> in SASL", reply.name()));
    co_return;
  }
  co_await authenticate_scram(mech == Mech::scram_sha1 ? sasl::Hash::sha1 : sasl::Hash::sha256);
}

// RFC 5802 without channel binding (gs2 header "n,,").
awaitable<void> Client::authenticate_scram(sasl::Hash hash) {
  const std::string_view mech = mech_name(env_.target.mech);
  const std::string cnonce = sasl::random_id(18);
  const std::string first_bare = fmt::format("n={},r={}", sasl_name(user_), cnonce);
  co_await write_now(auth_xml(mech, "n,," + first_bare));

  const xml::Element challenge = co_await next_element();
  if (is_sasl(challenge, "failure")) {
    throw LoginError(fmt::format("authentication failed: {}", describe_condition(challenge)));
  }
  if (!is_sasl(challenge, "challenge")) throw LoginError(fmt::format("unexpected <{}/> in SASL", challenge.name()));
  const std::string server_first = sasl_data(challenge);
  if (scram_attr(server_first, 'm')) throw LoginError("SCRAM: the server requires an unknown extension");
  const auto nonce = scram_attr(server_first, 'r');
  const auto salt64 = scram_attr(server_first, 's');
  const auto iterations_text = scram_attr(server_first, 'i');
  if (!nonce || !salt64 || !iterations_text) {
    throw LoginError(fmt::format("SCRAM: malformed server-first-message '{}'", server_first));
  }
  if (nonce->size() <= cnonce.size() || nonce->compare(0, cnonce.size(), cnonce) != 0) {
    throw LoginError("SCRAM: the server's nonce does not extend ours");
  }
  const auto salt = sasl::base64_decode(*salt64);
  std::uint32_t iterations = 0;
  const auto* it_end = iterations_text->data() + iterations_text->size();
  const auto parsed = std::from_chars(iterations_text->data(), it_end, iterations);
  if (!salt || parsed.ec != std::errc() || parsed.ptr != it_end || iterations == 0) {
    throw LoginError(fmt::format("SCRAM: bad salt or iteration count in '{}'", server_first));
  }

  const ScramKeys& keys = env_.scram.get(hash, env_.target.password, *salt, iterations);
  const std::string without_proof = "c=biws,r=" + *nonce;  // biws = base64("n,,")
  const std::string auth_message = first_bare + "," + server_first + "," + without_proof;
  const std::string proof = xor_bytes(keys.client_key, sasl::hmac(hash, keys.stored_key, auth_message));
  const std::string expected_verifier = sasl::base64_encode(sasl::hmac(hash, keys.server_key, auth_message));
  co_await write_now(response_xml(without_proof + ",p=" + sasl::base64_encode(proof)));

  xml::Element outcome = co_await next_element();
  std::string server_final;
  if (is_sasl(outcome, "challenge")) {
    // RFC 6120 §6.3.10 allows the server-final-message in a challenge, answered with an
    // empty response, then an empty <success/>.
    server_final = sasl_data(outcome);
    co_await write_now(response_xml(""));
    outcome = co_await next_element();
  }
  if (is_sasl(outcome, "failure")) throw LoginError(fmt::format("authentication failed: {}", describe_condition(outcome)));
  if (!is_sasl(outcome, "success")) throw LoginError(fmt::format("unexpected <{}/> in SASL", outcome.name()));
  if (server_final.empty()) server_final = sasl_data(outcome);
  if (const auto e = scram_attr(server_final, 'e')) throw LoginError(fmt::format("SCRAM: server error '{}'", *e));
  const auto verifier = scram_attr(server_final, 'v');
  if (!verifier) throw LoginError("SCRAM: the server sent no signature with <success/>");
  if (!sasl::constant_time_equal(*verifier, expected_verifier)) {
    throw LoginError("SCRAM: the server's signature is wrong (it does not know the password)");
  }
}

// --- parser events ------------------------------------------------------------------------

void Client::on_stream_open(xml::Element) {}  // nothing in the server's header matters here

void Client::on_stanza(xml::Element stanza) {
  if (!established_) {
    pending_.push_back(std::move(stanza));
    parser_->suspend();
    return;
  }
  dispatch(stanza);
}

void Client::on_stream_close() {
  peer_closed_ = true;
  if (!established_) {
    parser_->suspend();
    return;
  }
  end("the server closed the stream");
}

// --- established ---------------------------------------------------------------------------

void Client::dispatch(const xml::Element& stanza) {
  if (ended_) return;
  if (stanza.ns() == ns::streams) {
    if (stanza.name() == "error") end(fmt::format("stream error: {}", describe_condition(stanza)));
    return;  // features, or anything else stream-level: nothing to do
  }
  if (stanza.name() == "iq") {
    const auto type = stanza.attr_or("type");
    if (type == "get" || type == "set") {
      answer_iq(stanza);
      return;
    }
  }
  if (on_stanza_) on_stanza_(*this, stanza);
}

// Pings keep the connection (servers probe idle clients); any other request gets
// service-unavailable, as RFC 6120 §8.4 asks of a client that does not support it.
void Client::answer_iq(const xml::Element& iq) {
  const std::string id = xml::escape_attr(iq.attr_or("id"));
  std::string to;
  if (const auto* from = iq.attr("from")) to = fmt::format(" to='{}'", xml::escape_attr(*from));
  if (iq.attr_or("type") == "get" && iq.child("ping", ns::ping)) {
    send(fmt::format("<iq type='result' id='{}'{}/>", id, to));
    return;
  }
  send(fmt::format("<iq type='error' id='{}'{}><error type='cancel'><service-unavailable xmlns='{}'/></error></iq>", id,
                   to, ns::stanza_errors));
}

// The parameter keeps the client alive while the coroutine runs (copied into its frame).
awaitable<void> Client::reader(std::shared_ptr<Client> /*self*/) {
  // What arrived with the login's last reads first, in order.
  while (!pending_.empty() && !ended_) {
    const xml::Element e = std::move(pending_.front());
    pending_.pop_front();
    dispatch(e);
  }
  if (parser_suspended_ && !ended_) {
    parser_suspended_ = false;
    if (parser_->resume() == xml::Status::error) end(fmt::format("bad XML from the server: {}", parser_->error()->detail));
  }
  if (peer_closed_ && !ended_) end("the server closed the stream");
  while (!ended_) {
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls_) {
      n = co_await stream_.async_read_some(asio::buffer(buffer_), asio::redirect_error(use_awaitable, ec));
    } else {
      n = co_await stream_.next_layer().async_read_some(asio::buffer(buffer_), asio::redirect_error(use_awaitable, ec));
    }
    if (ended_) break;
    if (ec) {
      end(describe(ec));
      break;
    }
    if (parser_->feed(std::string_view(buffer_.data(), n)) == xml::Status::error) {
      end(fmt::format("bad XML from the server: {}", parser_->error()->detail));
    }
  }
}

bool Client::send(std::string_view xml) {
  if (ended_ || output_closed_) return false;
  out_.append(xml);
  start_writer();
  return true;
}

void Client::start_writer() {
  if (!established_ || writing_ || ended_ || out_.empty()) return;
  writing_ = true;
  asio::co_spawn(env_.io, writer(shared_from_this()), asio::detached);
}

// The only writer once established (never two writes in flight on one TLS stream): it
// takes everything queued so far and writes it at once.
awaitable<void> Client::writer(std::shared_ptr<Client> /*self*/) {
  while (!out_.empty() && !ended_) {
    writing_buf_.clear();
    writing_buf_.swap(out_);
    boost::system::error_code ec;
    if (tls_) {
      co_await asio::async_write(stream_, asio::buffer(writing_buf_), asio::redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(stream_.next_layer(), asio::buffer(writing_buf_),
                                 asio::redirect_error(use_awaitable, ec));
    }
    if (ec) {
      end(fmt::format("write failed: {}", describe(ec)));
      break;
    }
  }
  writing_buf_.clear();
  writing_ = false;
}

// --- closing ------------------------------------------------------------------------------

awaitable<void> Client::close(std::chrono::milliseconds wait) {
  auto self = shared_from_this();
  if (ended_) co_return;
  closing_ = true;
  if (!established_ || env_.target.tls == TlsMode::floor) {
    end("");  // no stream to close
    co_return;
  }
  send("</stream:stream>");
  output_closed_ = true;
  if (!ended_) {
    // end() cancels the wait when the server closes its side.
    boost::system::error_code ec;
    waiter_.expires_after(wait);
    co_await waiter_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  end("");
}

void Client::abort() {
  closing_ = true;
  end("");
}

void Client::end(const std::string& why) {
  if (ended_) return;
  ended_ = true;
  const bool unexpected = !closing_ && established_;
  close_socket();
  waiter_.cancel();
  if (unexpected && on_end_) on_end_(*this, why);
}

void Client::close_socket() {
  boost::system::error_code ec;
  auto& socket = stream_.lowest_layer();
  if (!socket.is_open()) return;
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

}  // namespace herald::bench
