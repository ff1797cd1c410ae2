#include "federation/s2s/s2s_out.hpp"

#include <spdlog/spdlog.h>

#include "federation/cert_names.hpp"
#include "federation/dialback_key.hpp"
#include "federation/dns/resolver.hpp"
#include "federation/dns/plan.hpp"
#include "federation/dns/srv.hpp"
#include "federation/s2s/s2s_manager.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/worker.hpp"
#include "server/xml/serializer.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::federation {

namespace {

constexpr std::string_view kServerNs = "jabber:server";
constexpr std::string_view kDialbackNs = "jabber:server:dialback";
constexpr std::string_view kDialbackFeatureNs = "urn:xmpp:features:dialback";
constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr auto kVerifyTimeout = std::chrono::seconds(15);
constexpr std::size_t kMaxVerifications = 256;  // outstanding <db:verify/> per stream

bool offers_external(const xml::Element& features) {
  const auto* mechs = features.child("mechanisms", kSaslNs);
  if (!mechs) return false;
  for (const auto* m : mechs->elements())
    if (m->name() == "mechanism" && m->text() == "EXTERNAL") return true;
  return false;
}

}  // namespace

S2sOut::S2sOut(S2sManager& manager, core::Worker& worker, std::string local, std::string remote)
    : manager_(manager),
      worker_(worker),
      local_(std::move(local)),
      remote_(std::move(remote)),
      idle_(worker.io()),
      last_use_(std::chrono::steady_clock::now()) {}

S2sOut::~S2sOut() = default;

void S2sOut::start() {
  asio::co_spawn(worker_.io(), [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void S2sOut::send(xml::Element stanza) {
  if (closing_) {
    unsent_.push_back(std::move(stanza));  // handed back to the manager when the stream ends
    return;
  }
  last_use_ = std::chrono::steady_clock::now();
  auto data = std::make_shared<const std::string>(xml::serialize(stanza));
  queued_bytes_ += data->size();
  if (queued_bytes_ > manager_.server().config().limits.send_queue_bytes) {
    // The peer does not read: give up on this stream; what waits goes to a new one.
    spdlog::warn("s2s {} -> {}: more than {} bytes waiting for the peer to read; closing", local_, remote_,
                 manager_.server().config().limits.send_queue_bytes);
    unsent_.push_back(std::move(stanza));
    abort_transport();
    return;
  }
  out_.push_back({std::move(data), nullptr, std::move(stanza)});
  start_drain();
}

void S2sOut::close() {
  if (closing_) return;
  closing_ = true;
  post_write(std::make_shared<const std::string>("</stream:stream>"), nullptr);
  // A peer that never closes its side does not keep the stream (and its socket) alive.
  auto grace = std::make_shared<asio::steady_timer>(worker_.io(), std::chrono::seconds(5));
  std::weak_ptr<S2sOut> weak = shared_from_this();
  grace->async_wait([grace, weak](const boost::system::error_code& ec) {
    if (auto self = weak.lock(); self && !ec) self->abort_transport();
  });
}

void S2sOut::abort_transport() {
  closing_ = true;
  boost::system::error_code ec;
  if (stream_) stream_->lowest_layer().close(ec);  // the reader ends; serve() hands back what is left
}

// Every write, during negotiation or after, goes through one queue drained by one
// coroutine: an SSL stream allows only one write in flight.
void S2sOut::post_write(std::shared_ptr<const std::string> data, std::shared_ptr<asio::steady_timer> done) {
  queued_bytes_ += data->size();
  out_.push_back({std::move(data), std::move(done), std::nullopt});
  start_drain();
}

void S2sOut::start_drain() {
  if (writing_) return;
  writing_ = true;
  asio::co_spawn(worker_.io(), [self = shared_from_this()]() { return self->drain(); }, asio::detached);
}

awaitable<void> S2sOut::drain() {
  while (!out_.empty()) {
    auto item = std::move(out_.front());
    out_.pop_front();
    boost::system::error_code ec;
    auto stream = stream_;
    if (!stream) {
      ec = asio::error::not_connected;
    } else if (tls_) {
      co_await asio::async_write(*stream, asio::buffer(*item.data), asio::redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(stream->next_layer(), asio::buffer(*item.data), asio::redirect_error(use_awaitable, ec));
    }
    queued_bytes_ -= std::min(queued_bytes_, item.data->size());
    if (item.done) item.done->cancel();
    if (ec) {
      // The rest cannot be written on this transport: end it; unwritten stanzas go back to
      // the manager when the reader notices.
      write_failed_ = true;
      if (item.stanza) unsent_.push_back(std::move(*item.stanza));  // not known to have arrived
      boost::system::error_code ignored;
      if (stream) stream->lowest_layer().close(ignored);
      break;
    }
  }
  writing_ = false;
}

// --- parsing ----------------------------------------------------------------------------

void S2sOut::on_stream_open(xml::Element header) { events_.push_back({Event::Kind::open, std::move(header)}); }
void S2sOut::on_stanza(xml::Element stanza) { events_.push_back({Event::Kind::element, std::move(stanza)}); }
void S2sOut::on_stream_close() { events_.push_back({Event::Kind::close, {}}); }

void S2sOut::new_parser() {
  const auto& l = manager_.server().config().limits;
  xml::Limits limits;
  limits.max_stanza_bytes = l.max_stanza_size;
  limits.max_depth = l.max_depth;
  limits.max_attributes = l.max_attributes;
  parser_ = std::make_unique<xml::StreamParser>(*this, limits);
  events_.clear();
}

awaitable<std::optional<S2sOut::Event>> S2sOut::next() {
  for (;;) {
    while (!events_.empty()) {
      auto ev = std::move(events_.front());
      events_.pop_front();
      // Answers to our verification requests may arrive at any point (XEP-0220 §2.1.2).
      if (ev.kind == Event::Kind::element && ev.element.name() == "verify" && ev.element.ns() == kDialbackNs) {
        take_verify_answer(ev.element);
        continue;
      }
      co_return ev;
    }
    std::size_t n = 0;
    if (tls_) {
      n = co_await stream_->async_read_some(asio::buffer(buffer_), use_awaitable);
    } else {
      n = co_await stream_->next_layer().async_read_some(asio::buffer(buffer_), use_awaitable);
    }
    if (parser_->feed(std::string_view(buffer_.data(), n)) == xml::Status::error) {
      spdlog::info("s2s {} -> {}: the peer sent bad XML", local_, remote_);
      co_return std::nullopt;
    }
  }
}

awaitable<void> S2sOut::write(std::string data) {
  auto done = std::make_shared<asio::steady_timer>(worker_.io(), std::chrono::steady_clock::time_point::max());
  post_write(std::make_shared<const std::string>(std::move(data)), done);
  boost::system::error_code ec;
  co_await done->async_wait(asio::redirect_error(use_awaitable, ec));
  if (write_failed_) throw std::runtime_error("the connection failed while writing");
}

awaitable<void> S2sOut::open_stream() {
  new_parser();
  std::string header = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                       "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='";
  header += xml::escape_attr(local_);
  header += "' to='";
  header += xml::escape_attr(remote_);
  header += "' version='1.0'>";
  co_await write(std::move(header));
  auto open = co_await next();
  if (!open || open->kind != Event::Kind::open) throw std::runtime_error("no stream header from the peer");
  stream_id_ = std::string(open->element.attr_or("id"));
  peer_dialback_ = false;
  for (const auto& [name, value] : open->element.attrs())
    if (value == kDialbackNs) peer_dialback_ = true;
  auto features = co_await next();
  if (!features || features->kind != Event::Kind::element || features->element.name() != "features" ||
      features->element.ns() != kStreamsNs)
    throw std::runtime_error("no stream features from the peer");
  features_ = std::move(features->element);
}

// --- negotiation ------------------------------------------------------------------------

void S2sOut::reset_transport() {
  if (stream_) {
    boost::system::error_code ec;
    stream_->lowest_layer().close(ec);
  }
  stream_.reset();
  tls_ = false;
  transport_up_ = false;
  write_failed_ = false;
}

awaitable<bool> S2sOut::attempt(const std::string& host, const asio::ip::tcp::endpoint& endpoint, bool direct_tls,
                                std::string& why) {
  const auto& cfg = manager_.config();
  stream_ = std::make_shared<asio::ssl::stream<asio::ip::tcp::socket>>(worker_.io(), manager_.client_tls(local_));
  // One bound for the whole setup: a peer that accepts TCP and then says nothing is given
  // up on (issue 5: 15 s by default).
  // The handler may already be queued when the attempt ends: it owns its state and only
  // touches the stream of this attempt, and only while the attempt is still running.
  asio::steady_timer watchdog(worker_.io());
  auto fired = std::make_shared<bool>(false);
  auto running = std::make_shared<bool>(true);
  std::weak_ptr<asio::ssl::stream<asio::ip::tcp::socket>> armed = stream_;
  watchdog.expires_after(cfg.connect_timeout);
  watchdog.async_wait([fired, running, armed](const boost::system::error_code& ec) {
    if (ec || !*running) return;
    *fired = true;
    boost::system::error_code ignored;
    if (auto s = armed.lock()) s->lowest_layer().close(ignored);
  });
  bool ok = false;
  try {
    co_await stream_->lowest_layer().async_connect(endpoint, use_awaitable);
    SSL_set_tlsext_host_name(stream_->native_handle(), remote_.c_str());
    if (direct_tls) {
      co_await stream_->async_handshake(asio::ssl::stream_base::client, use_awaitable);
      tls_ = true;
    }
    co_await open_stream();
    if (!tls_) {
      if (!features_->child("starttls", kTlsNs)) throw std::runtime_error("the peer does not offer STARTTLS");
      co_await write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      auto answer = co_await next();
      if (!answer || answer->kind != Event::Kind::element || answer->element.name() != "proceed")
        throw std::runtime_error("the peer refused STARTTLS");
      co_await stream_->async_handshake(asio::ssl::stream_base::client, use_awaitable);
      tls_ = true;
      co_await open_stream();
    }
    transport_up_ = true;
    send_verify_requests();

    const auto check = manager_.verify_peer(stream_->native_handle(), remote_);
    if (!check.ok()) {
      // No ?: with string temporaries in coroutines: GCC 12 destroys them twice.
      std::string problem = check.chain_error;
      if (check.chain_ok) problem = "no name matches (" + describe(check.ids) + ")";
      spdlog::info("s2s {} -> {} ({}): certificate not valid for {}: {}", local_, remote_, host, remote_, problem);
      if (cfg.require_valid_certificates) throw std::runtime_error("the peer's certificate is not valid for " + remote_);
    }

    // XEP-0288: let the peer use this stream for its stanzas to us too, but only when its
    // certificate proves who it is (otherwise only DNS would vouch for what it sends).
    bidi_ = check.ok() && features_->child("bidi", "urn:xmpp:features:bidi") != nullptr;
    if (bidi_) co_await write("<bidi xmlns='urn:xmpp:bidi'/>");

    bool authenticated = false;
    if (check.ok() && offers_external(*features_)) {
      // XEP-0178: our certificate speaks for us; the authorization identity is implied.
      co_await write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
      auto answer = co_await next();
      if (answer && answer->kind == Event::Kind::element && answer->element.name() == "success") {
        co_await open_stream();
        authenticated = true;
      } else {
        spdlog::info("s2s {} -> {}: SASL EXTERNAL refused; trying dialback", local_, remote_);
      }
    }
    if (!authenticated) {
      const bool dialback = features_->child("dialback", kDialbackFeatureNs) != nullptr || peer_dialback_;
      if (!cfg.dialback || !dialback)
        throw std::runtime_error("no way to authenticate: the peer offers neither SASL EXTERNAL for our certificate nor dialback");
      std::string request = "<db:result from='" + xml::escape_attr(local_) + "' to='" + xml::escape_attr(remote_) + "'>";
      request += dialback_key(manager_.dialback_secret(), remote_, local_, stream_id_);
      request += "</db:result>";
      co_await write(std::move(request));
      for (;;) {
        auto answer = co_await next();
        if (!answer || answer->kind != Event::Kind::element) throw std::runtime_error("the peer closed the stream during dialback");
        const auto& el = answer->element;
        // Only the answer to our request (XEP-0220 §2.1.3): from the peer, to us, typed.
        if (el.name() == "result" && el.ns() == kDialbackNs && el.attr("type") && el.attr_or("from") == remote_ &&
            el.attr_or("to") == local_) {
          if (el.attr_or("type") != "valid") throw std::runtime_error("the peer did not accept our dialback key");
          authenticated = true;
          break;
        }
        if (el.name() == "error" && el.ns() == kStreamsNs) throw std::runtime_error("stream error: " + xml::serialize(el));
      }
    }
    ok = authenticated;
    if (ok) {
      locals_.insert(local_);
      const auto* db = features_->child("dialback", kDialbackFeatureNs);
      piggyback_ok_ = cfg.dialback && db && db->child("errors", kDialbackFeatureNs);
    }
  } catch (const std::exception& e) {
    why = e.what();
    if (*fired) why = "no answer within " + std::to_string(cfg.connect_timeout.count()) + " s";
  }
  *running = false;
  watchdog.cancel();
  if (!ok) reset_transport();
  co_return ok;
}

awaitable<void> S2sOut::run() {
  auto self = shared_from_this();
  // Whatever happens inside, the manager hears how it ended: a pair never stays stuck on a
  // stream that died of an exception.
  bool failed = false;
  std::string what;
  try {
    co_await run_stream();
  } catch (const std::exception& e) {
    failed = true;
    what = e.what();
  }
  if (failed) {
    spdlog::error("s2s {} -> {}: {}", local_, remote_, what);
    for (auto& [id, v] : verifications_) v->wake->cancel();
    reset_transport();
    if (ready_) {
      manager_.stream_closed(local_, remote_, this, take_unsent());
    } else {
      manager_.stream_failed(local_, remote_, this, xmpp::StanzaError::remote_server_timeout, what);
    }
  }
}

awaitable<void> S2sOut::run_stream() {
  auto self = shared_from_this();
  spdlog::debug("s2s {} -> {}: resolving", local_, remote_);
  auto& resolver = manager_.resolver(worker_);
  const std::string xmpps_name = std::string(dns::xmpps_server_service) + remote_;
  const std::string xmpp_name = std::string(dns::xmpp_server_service) + remote_;
  const auto xmpps = co_await resolver.srv(xmpps_name);
  const auto xmpp = co_await resolver.srv(xmpp_name);
  const auto plan = dns::connection_plan(remote_, xmpps, xmpp);
  spdlog::debug("s2s {} -> {}: {} target(s); {}", local_, remote_, plan.targets.size(), plan.reason);
  if (plan.targets.empty()) {
    spdlog::info("s2s {} -> {}: {}", local_, remote_, plan.reason);
    for (auto& [id, v] : verifications_) v->wake->cancel();
    manager_.stream_failed(local_, remote_, this, xmpp::StanzaError::remote_server_not_found, plan.reason);
    co_return;
  }
  std::string why;
  bool any_address = false;
  for (const auto& target : plan.targets) {
    auto addresses = co_await resolver.addresses(target.host);
    if (addresses.addresses.empty()) {
      why = target.host + ": no address (" + std::string(dns::to_string(addresses.status));
      if (!addresses.error.empty()) why += ": " + addresses.error;
      why += ")";
      spdlog::info("s2s {} -> {}: {}", local_, remote_, why);
      continue;
    }
    any_address = true;
    for (const auto& address : addresses.addresses) {
      const asio::ip::tcp::endpoint endpoint(address, target.port);
      std::string failure;
      if (co_await attempt(target.host, endpoint, target.direct_tls, failure)) {
        spdlog::info("s2s {} -> {}: stream up via {}:{} ({})", local_, remote_, target.host, target.port,
                     target.direct_tls ? "direct TLS" : "STARTTLS");
        ready_ = true;
        manager_.stream_ready(local_, remote_, self);
        co_await serve();
        co_return;
      }
      why = target.host + " [" + address.to_string() + "]:" + std::to_string(target.port) + ": " + failure;
      spdlog::info("s2s {} -> {}: {}", local_, remote_, why);
    }
  }
  // RFC 6120 §10.4.3: it resolved but could not be reached -> remote-server-timeout.
  const auto condition = any_address ? xmpp::StanzaError::remote_server_timeout : xmpp::StanzaError::remote_server_not_found;
  for (auto& [id, v] : verifications_) v->wake->cancel();
  if (why.empty()) why = "no target worked";
  manager_.stream_failed(local_, remote_, this, condition, why);
}

// --- established ------------------------------------------------------------------------

awaitable<void> S2sOut::serve() {
  asio::co_spawn(worker_.io(), [self = shared_from_this()]() { return self->idle_watch(); }, asio::detached);
  try {
    for (;;) {
      auto ev = co_await next();
      if (!ev || ev->kind == Event::Kind::close) break;
      if (ev->kind == Event::Kind::element && ev->element.name() == "error" && ev->element.ns() == kStreamsNs) {
        spdlog::info("s2s {} -> {}: stream error from the peer: {}", local_, remote_, xml::serialize(ev->element));
        break;
      }
      if (ev->kind == Event::Kind::element && ev->element.name() == "result" && ev->element.ns() == kDialbackNs) {
        take_piggyback_answer(ev->element);
        continue;
      }
      if (ev->kind == Event::Kind::element && xmpp::kind_of(ev->element) != xmpp::Kind::other &&
          ev->element.ns() == kServerNs) {
        co_await reverse_stanza(std::move(ev->element));
        if (closing_) break;
      }
    }
  } catch (const std::exception& e) {
    if (!closing_) spdlog::info("s2s {} -> {}: connection lost: {}", local_, remote_, e.what());
  }
  closing_ = true;
  idle_.cancel();
  for (auto& [id, v] : verifications_) v->wake->cancel();
  for (auto& [local, v] : piggybacks_) v->wake->cancel();
  reset_transport();
  manager_.stream_closed(local_, remote_, this, take_unsent());
}

// A stanza from the peer on our outgoing stream: only with XEP-0288, and only from the
// domain this stream authenticated to us, to the domain we authenticated as.
awaitable<void> S2sOut::reverse_stanza(xml::Element stanza) {
  auto from = xmpp::Jid::parse(stanza.attr_or("from"));
  auto to = xmpp::Jid::parse(stanza.attr_or("to"));
  if (!bidi_ || !from || !to || from->domain() != remote_ || !locals_.contains(to->domain())) {
    spdlog::warn("s2s {} -> {}: the peer sent a stanza it may not send on this stream; closing", local_, remote_);
    post_write(std::make_shared<const std::string>(
                   xmpp::stream_error_xml(xmpp::StreamError::invalid_from, "not authorized on this stream") + "</stream:stream>"),
               nullptr);
    closing_ = true;
    co_return;
  }
  last_use_ = std::chrono::steady_clock::now();
  stanza.rename_namespace(kServerNs, "jabber:client");
  co_await manager_.server().router().route(std::move(stanza));
}

void S2sOut::take_piggyback_answer(const xml::Element& el) {
  if (!el.attr("type")) return;  // a request, not an answer
  auto it = piggybacks_.find(std::string(el.attr_or("to")));
  if (it == piggybacks_.end() || el.attr_or("from") != remote_) return;  // unsolicited: ignored
  it->second->answer = el.attr_or("type") == "valid";
  it->second->wake->cancel();
  piggybacks_.erase(it);
}

awaitable<bool> S2sOut::add_local(std::string local) {
  auto self = shared_from_this();
  if (locals_.contains(local)) co_return true;
  if (!can_piggyback() || piggybacks_.contains(local)) co_return false;
  auto v = std::make_shared<Verification>();
  v->wake = std::make_shared<asio::steady_timer>(worker_.io());
  piggybacks_[local] = v;
  std::string request = "<db:result from='" + xml::escape_attr(local) + "' to='" + xml::escape_attr(remote_) + "'>";
  request += dialback_key(manager_.dialback_secret(), remote_, local, stream_id_);
  request += "</db:result>";
  post_write(std::make_shared<const std::string>(std::move(request)), nullptr);
  v->wake->expires_after(manager_.config().connect_timeout);
  boost::system::error_code ec;
  co_await v->wake->async_wait(asio::redirect_error(use_awaitable, ec));
  piggybacks_.erase(local);
  if (!v->answer.value_or(false) || closing_) co_return false;
  locals_.insert(local);
  spdlog::info("s2s {} -> {}: also carries {} (dialback on the same stream)", local_, remote_, local);
  co_return true;
}

awaitable<void> S2sOut::idle_watch() {
  auto self = shared_from_this();
  const auto idle = manager_.config().idle_timeout;
  while (!closing_) {
    idle_.expires_at(last_use_ + idle);
    boost::system::error_code ec;
    co_await idle_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec || closing_) co_return;
    if (std::chrono::steady_clock::now() - last_use_ >= idle) {
      // Unused streams are closed (issue 5); the peer closes its side and serve() ends.
      spdlog::info("s2s {} -> {}: idle for {} s, closing", local_, remote_, idle.count());
      manager_.stream_closed(local_, remote_, this, take_unsent());
      close();
      co_return;
    }
  }
}

// --- dialback verification (XEP-0220 §2.1.2) --------------------------------------------

void S2sOut::send_verify_requests() {
  if (!transport_up_ || !stream_) return;
  while (!verify_out_.empty()) {
    auto [local, id, key] = std::move(verify_out_.front());
    verify_out_.pop_front();
    std::string xml = "<db:verify from='" + xml::escape_attr(local) + "' to='" + xml::escape_attr(remote_) + "' id='" +
                      xml::escape_attr(id) + "'>" + xml::escape_text(key) + "</db:verify>";
    post_write(std::make_shared<const std::string>(std::move(xml)), nullptr);
  }
}

void S2sOut::take_verify_answer(const xml::Element& el) {
  if (el.attr_or("from") != remote_ || !el.attr("type")) return;
  auto it = verifications_.find({std::string(el.attr_or("to")), std::string(el.attr_or("id"))});
  if (it == verifications_.end()) return;  // unsolicited: ignored
  it->second->answer = el.attr_or("type") == "valid";
  it->second->wake->cancel();
  verifications_.erase(it);
}

awaitable<std::optional<bool>> S2sOut::verify(std::string local, std::string id, std::string key) {
  auto self = shared_from_this();
  const std::pair<std::string, std::string> slot{local, id};
  if (verifications_.size() >= kMaxVerifications || verifications_.contains(slot) || closing_) co_return std::nullopt;
  auto v = std::make_shared<Verification>();
  v->wake = std::make_shared<asio::steady_timer>(worker_.io());
  verifications_[slot] = v;
  verify_out_.push_back({std::move(local), std::move(id), std::move(key)});
  send_verify_requests();
  v->wake->expires_after(kVerifyTimeout);
  boost::system::error_code ec;
  co_await v->wake->async_wait(asio::redirect_error(use_awaitable, ec));
  if (auto it = verifications_.find(slot); it != verifications_.end() && it->second == v) verifications_.erase(it);
  co_return v->answer;
}

}  // namespace herald::federation

namespace herald::federation {

std::vector<xml::Element> S2sOut::take_unsent() {
  std::vector<xml::Element> out = std::move(unsent_);
  unsent_.clear();
  for (auto& w : out_)
    if (w.stanza) out.push_back(std::move(*w.stanza));
  out_.clear();
  queued_bytes_ = 0;
  return out;
}

}  // namespace herald::federation
