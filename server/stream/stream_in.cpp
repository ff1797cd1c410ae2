#include "server/stream/stream_in.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "server/core/server.hpp"
#include "server/core/worker.hpp"
#include "server/sasl/crypto.hpp"
#include "server/xml/serializer.hpp"
#include "server/xmpp/jid.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::stream {

using xmpp::StreamError;

namespace {

StreamError to_stream_error(xml::ErrorKind kind) {
  switch (kind) {
    case xml::ErrorKind::not_well_formed: return StreamError::not_well_formed;
    case xml::ErrorKind::restricted_xml: return StreamError::restricted_xml;
    case xml::ErrorKind::policy_violation: return StreamError::policy_violation;
    case xml::ErrorKind::unsupported_encoding: return StreamError::unsupported_encoding;
    case xml::ErrorKind::bad_format: return StreamError::bad_format;
  }
  return StreamError::not_well_formed;
}

constexpr auto kCloseGrace = std::chrono::seconds(5);
constexpr std::size_t kMaxBatch = 64;

}  // namespace

StreamIn::StreamIn(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                   const config::Listener& listener, std::string content_ns)
    : core::Session(worker.index()),
      server_(server),
      worker_(worker),
      listener_(listener),
      stream_(std::move(socket), server.tls().default_context().native_handle()),
      content_ns_(std::move(content_ns)),
      wake_(worker.io()),
      flushed_(worker.io()),
      deadline_(worker.io()),
      keepalive_(worker.io()),
      last_read_(std::chrono::steady_clock::now()) {
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    remote_address_ = addr.to_string();
  }
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  stream_.socket().set_option(asio::socket_base::keep_alive(true), ec);
  // Kernel keepalive probes on the same bound as our pings: a peer whose machine vanished
  // (no FIN, no RST) is found even while we have nothing to send.
  const auto& k = server.config().keepalive;
  const int fd = stream_.socket().native_handle();
  const int idle = static_cast<int>(k.ping_interval.count());
  const int count = 3;
  const int interval = std::max(1, static_cast<int>(k.ping_timeout.count()) / count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

void StreamIn::start_keepalive() {
  asio::co_spawn(worker_.io(), [self = shared_from_this()]() { return self->keepalive(); }, asio::detached);
}

awaitable<void> StreamIn::keepalive() {
  auto self = shared_from_this();
  const auto& k = server_.config().keepalive;
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> ping_sent;
  while (!closing_ && !finished_) {
    const auto now = Clock::now();
    Clock::time_point wake;
    if (ping_sent && last_read_ > *ping_sent) ping_sent.reset();  // it answered (anything counts)
    if (ping_sent) {
      if (now - *ping_sent >= k.ping_timeout) {
        spdlog::info("{}: no answer to a ping within {}s, closing", jid_.str(), k.ping_timeout.count());
        close(StreamError::connection_timeout, "no answer to ping");
        co_return;
      }
      wake = *ping_sent + k.ping_timeout;
    } else if (now - last_read_ >= k.ping_interval) {
      send_keepalive_probe();
      ping_sent = now;
      wake = now + k.ping_timeout;
    } else {
      wake = last_read_ + k.ping_interval;
    }
    boost::system::error_code ec;
    keepalive_.expires_at(wake);
    co_await keepalive_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

StreamIn::~StreamIn() = default;

void StreamIn::start() {
  auto self = shared_from_this();
  std::weak_ptr<StreamIn> weak = self;
  track_id_ = worker_.track([weak] {
    if (auto s = weak.lock()) s->close(StreamError::system_shutdown, "the server is shutting down");
  });
  spdlog::debug("c2s connection from {} on worker {}", remote_address_, worker_.index());

  deadline_.expires_after(server_.config().limits.unauthenticated_timeout);
  deadline_.async_wait([weak](const boost::system::error_code& ec) {
    auto s = weak.lock();
    if (ec || !s || s->authenticated_ || s->finished_) return;
    spdlog::info("{}: no authentication within the time limit, closing", s->remote_address_);
    s->close(StreamError::connection_timeout, "authentication took too long");
  });

  asio::co_spawn(worker_.io(), [self]() { return self->reader(); }, asio::detached);
  asio::co_spawn(worker_.io(), [self]() { return self->writer(); }, asio::detached);
}

void StreamIn::new_parser() {
  header_sent_ = false;  // a new stream: our next output must be a new header
  const auto& l = server_.config().limits;
  xml::Limits limits;
  limits.max_stanza_bytes = authenticated_ ? l.max_stanza_size : l.max_stanza_size_unauthenticated;
  limits.max_depth = l.max_depth;
  limits.max_attributes = l.max_attributes;
  parser_ = std::make_unique<xml::StreamParser>(*this, limits);
  pending_.clear();
  parser_replaced_ = true;
}

void StreamIn::mark_authenticated() {
  if (authenticated_) return;
  authenticated_ = true;
  const auto& l = server_.config().limits;
  xml::Limits limits;
  limits.max_stanza_bytes = l.max_stanza_size;
  limits.max_depth = l.max_depth;
  limits.max_attributes = l.max_attributes;
  if (parser_) parser_->set_limits(limits);
}

void StreamIn::restart_stream() {
  new_parser();
  state_ = State::wait_header;
}

// --- parser callbacks: queue the event; during negotiation stop after each one ---------

void StreamIn::on_stream_open(xml::Element header) {
  pending_.push_back({Pending::Kind::open, std::move(header)});
  parser_->suspend();
}

void StreamIn::on_stanza(xml::Element stanza) {
  pending_.push_back({Pending::Kind::element, std::move(stanza)});
  if (state_ != State::established) parser_->suspend();
}

void StreamIn::on_stream_close() {
  pending_.push_back({Pending::Kind::close, {}});
  parser_->suspend();
}

// --- reading ----------------------------------------------------------------------------

// One read buffer per worker thread, not per connection: bytes are handed to the parser
// (which keeps what it does not consume) before the reader can suspend again, so an idle
// session holds no read buffer (docs/performance.md: memory per idle session).
namespace {
thread_local std::array<char, 16384> read_buffer;
}

awaitable<std::size_t> StreamIn::read_some() {
  co_return co_await stream_.read_some(asio::buffer(read_buffer));
}

awaitable<void> StreamIn::handshake() {
  handshaking_ = true;
  co_await stream_.handshake();
  handshaking_ = false;
  tls_ = true;
  spdlog::debug("{}: TLS established ({}, {})", remote_address_, SSL_get_version(native_ssl()),
                SSL_get_cipher_name(native_ssl()));
}

awaitable<void> StreamIn::reader() {
  auto self = shared_from_this();
  try {
    if (listener_.tls == config::TlsMode::direct) co_await handshake();
    new_parser();
    while (!closing_) {
      const std::size_t n = co_await read_some();
      last_read_ = std::chrono::steady_clock::now();
      parser_replaced_ = false;
      auto status = parser_->feed(std::string_view(read_buffer.data(), n));
      for (;;) {
        co_await process_pending();
        if (closing_) break;
        // The stream was restarted (TLS or SASL): the rest of this read belonged to the old
        // stream and is dropped with the old parser (RFC 6120 §5.4.3.3).
        if (parser_replaced_) break;
        if (status == xml::Status::error) {
          const auto& err = *parser_->error();
          spdlog::info("{}: bad XML: {}", remote_address_, err.detail);
          close(to_stream_error(err.kind), err.detail);
          break;
        }
        if (status == xml::Status::suspended) {
          status = parser_->resume();
          continue;
        }
        break;
      }
    }
  } catch (const boost::system::system_error& e) {
    if (!closing_) spdlog::debug("{}: connection ended: {}", remote_address_, e.code().message());
    finish();
  } catch (const std::exception& e) {
    spdlog::error("{}: internal error: {}", remote_address_, e.what());
    close(StreamError::internal_server_error);
  }
}

awaitable<void> StreamIn::process_pending() {
  while (!pending_.empty() && !closing_) {
    Pending ev = std::move(pending_.front());
    pending_.pop_front();
    switch (ev.kind) {
      case Pending::Kind::open: co_await on_header(ev.element); break;
      case Pending::Kind::element: co_await dispatch(std::move(ev.element)); break;
      case Pending::Kind::close:
        // The peer closed its stream: close ours (RFC 6120 §4.4).
        closing_ = true;
        peer_closed_ = true;
        send_nonza("</stream:stream>");
        output_closed_ = true;
        break;
    }
    if (parser_replaced_) co_return;
  }
}

std::string StreamIn::header_xml(std::string_view from) const {
  std::string h = "<?xml version='1.0'?><stream:stream xmlns='";
  h += content_ns_;
  h += "' xmlns:stream='http://etherx.jabber.org/streams'";
  if (content_ns_ == "jabber:server") h += " xmlns:db='jabber:server:dialback'";  // XEP-0220
  h += " id='";
  h += stream_id_;
  h += "'";
  if (!from.empty()) {
    h += " from='";
    h += xml::escape_attr(from);
    h += "'";
  }
  h += " version='1.0' xml:lang='en'>";
  return h;
}

awaitable<void> StreamIn::on_header(const xml::Element& header) {
  stream_id_ = sasl::random_id(16);
  if (header.name() != "stream" || header.ns() != ns::streams) {
    close(StreamError::invalid_namespace, "the stream element must be stream:stream in http://etherx.jabber.org/streams");
    co_return;
  }
  if (header.attr_or("xmlns") != content_ns_) {
    close(StreamError::invalid_namespace, "the content namespace must be " + content_ns_);
    co_return;
  }
  const auto version = header.attr_or("version");
  if (version.empty() || version.front() < '1' || version.front() > '9' ||
      (version.size() > 1 && version[1] != '.' && !std::isdigit(static_cast<unsigned char>(version[1])))) {
    close(StreamError::unsupported_version, "XMPP 1.0 streams only (version='1.0')");
    co_return;
  }
  auto to = xmpp::prep_domain(header.attr_or("to"));
  if (!to || !server_.host(*to)) {
    close(StreamError::host_unknown, "this server does not serve '" + std::string(header.attr_or("to")) + "'");
    co_return;
  }
  if (!domain_.empty() && *to != domain_) {
    close(StreamError::host_unknown, "a restarted stream cannot change the domain");
    co_return;
  }
  domain_ = *to;
  // Who the peer says it is (servers name themselves; RFC 6120 §4.7.1): nothing is
  // trusted until the policy authenticates it.
  if (auto from = xmpp::prep_domain(header.attr_or("from"))) {
    peer_from_ = *from;
  } else {
    peer_from_.clear();
  }

  std::string out = header_xml(domain_);
  header_sent_ = true;
  if (!tls_ && listener_.tls == config::TlsMode::starttls) {
    state_ = State::wait_starttls;
  } else if (!authenticated_) {
    state_ = State::wait_sasl;
  } else {
    state_ = State::wait_bind;
  }
  xml::Element features("features", std::string(ns::streams));
  if (state_ == State::wait_starttls) {
    features.add("starttls", std::string(ns::tls)).add("required");
  } else {
    add_features(features);
  }
  out += "<stream:features>";
  for (const auto* child : features.elements()) xml::serialize_to(out, *child, content_ns_);
  out += "</stream:features>";
  send(std::move(out));
}

awaitable<void> StreamIn::dispatch(xml::Element element) {
  if (state_ == State::wait_header) {
    close(StreamError::not_well_formed, "expected a stream header");
    co_return;
  }
  if (state_ == State::wait_starttls) {
    if (element.ns() == ns::tls && element.name() == "starttls") {
      co_await start_tls();
    } else if (element.ns() == ns::sasl && element.name() == "auth") {
      send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>");
      close(StreamError::policy_violation, "STARTTLS is required before authentication");
    } else if (xmpp::kind_of(element) != xmpp::Kind::other) {
      close(StreamError::not_authorized, "negotiate TLS and authenticate first");
    } else {
      close(StreamError::policy_violation, "STARTTLS is required on this port");
    }
    co_return;
  }
  co_await handle_element(std::move(element));
}

awaitable<void> StreamIn::start_tls() {
  send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  co_await flush();
  // Anything the client pipelined after <starttls/> is dropped with the old parser.
  new_parser();
  state_ = State::wait_header;
  try {
    co_await handshake();
  } catch (const boost::system::system_error& e) {
    spdlog::info("{}: TLS handshake failed: {}", remote_address_, e.code().message());
    finish();
  }
}

// --- writing ----------------------------------------------------------------------------

void StreamIn::send(std::string xml) { enqueue(std::make_shared<const std::string>(std::move(xml)), true); }

void StreamIn::send(const xml::Element& element) { send(xml::serialize(element, content_ns_)); }

void StreamIn::send_nonza(std::string xml) { enqueue(std::make_shared<const std::string>(std::move(xml)), false); }

void StreamIn::resend(std::shared_ptr<const std::string> xml) { enqueue(std::move(xml), false); }

void StreamIn::enqueue(std::shared_ptr<const std::string> xml, bool stanza) {
  if (finished_ || output_closed_) return;
  if (stanza) {
    // Nothing may follow </stream:stream>; the policy may close the stream right here
    // (e.g. too many unacknowledged stanzas) and keeps the stanza for re-routing.
    if (closing_) return;
    on_stanza_sent(xml);
    if (closing_) return;
  }
  queued_bytes_ += xml->size();
  queue_.push_back(std::move(xml));
  wake_.cancel();
}

void StreamIn::deliver(std::shared_ptr<const std::string> xml) {
  if (!worker_.on_this_thread()) {
    asio::post(worker_.io(), [self = shared_from_this(), xml = std::move(xml)]() mutable {
      self->deliver(std::move(xml));
    });
    return;
  }
  if (closing_ || finished_) return;
  if (queued_bytes_ + xml->size() > server_.config().limits.send_queue_bytes) {
    spdlog::warn("{}: send queue over {} bytes (client not reading), closing", jid_.str(),
                 server_.config().limits.send_queue_bytes);
    close(StreamError::policy_violation, "send queue full");
    on_overflow(std::move(xml));
    return;
  }
  enqueue(std::move(xml), true);
}

awaitable<void> StreamIn::flush() {
  while ((!queue_.empty() || writing_) && !finished_) {
    boost::system::error_code ec;
    flushed_.expires_at(asio::steady_timer::time_point::max());
    co_await flushed_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

awaitable<void> StreamIn::writer() {
  auto self = shared_from_this();
  std::vector<std::shared_ptr<const std::string>> batch;
  try {
    for (;;) {
      if (queue_.empty()) {
        flushed_.cancel();
        if (closing_ || finished_) break;
        boost::system::error_code ec;
        wake_.expires_at(asio::steady_timer::time_point::max());
        co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
        if (finished_) break;
        continue;
      }
      if (handshaking_) {
        // Nothing may be written while TLS is being negotiated; the reader owns the socket.
        boost::system::error_code ec;
        wake_.expires_after(std::chrono::milliseconds(10));
        co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      // Everything queued (up to kMaxBatch stanzas) goes out in one write: under TLS one
      // SSL_write, so the stanzas share records and system calls.
      batch.clear();
      std::size_t total = 0;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        total += queue_.front()->size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      writing_ = true;
      if (batch.size() == 1) {
        co_await stream_.write(*batch.front());
      } else {
        std::string joined;
        joined.reserve(total);
        for (const auto& b : batch) joined += *b;
        co_await stream_.write(joined);
      }
      writing_ = false;
      for (const auto& b : batch) queued_bytes_ -= b->size();
      batch.clear();  // an idle session keeps no written stanza
    }
  } catch (const boost::system::system_error& e) {
    spdlog::debug("{}: write failed: {}", remote_address_, e.code().message());
  }
  writing_ = false;
  flushed_.cancel();
  finish();
}

// --- closing ----------------------------------------------------------------------------

void StreamIn::close_with(StreamError error, std::string text) {
  asio::post(worker_.io(), [self = shared_from_this(), error, text = std::move(text)] {
    self->close(error, text);
  });
}

void StreamIn::close(StreamError error, std::string_view text, std::string_view app_condition) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_error_ = error;
  if (handshaking_) {
    finish();
    return;
  }
  spdlog::info("{}{}{}: closing stream: {}{}{}", jid_.empty() ? "" : jid_.str(), jid_.empty() ? "" : " from ",
               remote_address_, xmpp::name(error), text.empty() ? "" : ": ", text);
  std::string out;
  if (!header_sent_) {
    if (stream_id_.empty()) stream_id_ = sasl::random_id(16);
    out = header_xml(domain_.empty() ? server_.config().hosts.front().domain : domain_);
    header_sent_ = true;
  }
  out += xmpp::stream_error_xml(error, text, app_condition);
  out += "</stream:stream>";
  send_nonza(std::move(out));
  output_closed_ = true;
  // A peer that does not read must not keep us waiting for the last bytes.
  std::weak_ptr<StreamIn> weak = shared_from_this();
  deadline_.expires_after(kCloseGrace);
  deadline_.async_wait([weak](const boost::system::error_code& ec) {
    if (auto s = weak.lock(); s && !ec) s->finish();
  });
}

void StreamIn::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  on_closed();
  boost::system::error_code ec;
  deadline_.cancel();
  keepalive_.cancel();
  wake_.cancel();
  flushed_.cancel();
  stream_.close();
  worker_.untrack(track_id_);
}

}  // namespace herald::stream
