// The receiving side of an XML stream (RFC 6120 §4-5), independent of c2s or s2s policy:
// transport (TCP, then TLS), the incremental parser, the stream header, STARTTLS, stream
// restarts, the writer queue, timers and stream errors. A policy class (c2s now, s2s later)
// supplies the stream features and handles each element once the header is accepted.
//
// One reader and one writer coroutine per stream (Asio's chat_server shape). The reader
// parses and processes elements one at a time, awaiting storage where needed; during
// negotiation the parser is suspended after each element, so the rest of the bytes already
// read are parsed only if the stream survives unchanged (after <starttls/> or SASL success
// they are discarded with the old parser).
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "server/core/config/config.hpp"
#include "server/core/session.hpp"
#include "server/net/asio.hpp"
#include "server/net/tls_socket.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/stanza.hpp"

namespace herald::core {
class Server;
class Worker;
}  // namespace herald::core

namespace herald::stream {

enum class State { wait_header, wait_starttls, wait_sasl, wait_bind, established };

class StreamIn : public core::Session,
                 public xml::StreamHandler,
                 public std::enable_shared_from_this<StreamIn> {
 public:
  ~StreamIn() override;

  // Starts the reader and writer on the worker's thread.
  void start();

  void deliver(std::shared_ptr<const std::string> xml) override;
  void close_with(xmpp::StreamError error, std::string text) override;

 protected:
  StreamIn(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
           const config::Listener& listener, std::string content_ns);

  // Policy: features for the current state; each element after the header.
  virtual void add_features(xml::Element& features) = 0;
  virtual awaitable<void> handle_element(xml::Element element) = 0;
  // Called once when the stream ends, however it ends.
  virtual void on_closed() {}
  // Out-of-contact detection: after keepalive.ping_interval of silence the policy sends a
  // probe (c2s: an XEP-0199 ping); any data within ping_timeout keeps the stream.
  void start_keepalive();
  virtual void send_keepalive_probe() {}

  // Stanzas (and replies) for the peer: each passes on_stanza_sent().
  void send(std::string xml);
  void send(const xml::Element& element);
  // Stream-level elements that are not stanzas (XEP-0198 nonzas): not counted.
  void send_nonza(std::string xml);
  // Writes a stanza again without counting it (XEP-0198 retransmission after resumption).
  void resend(std::shared_ptr<const std::string> xml);
  awaitable<void> flush();
  // Sends the stream error and closes. Idempotent.
  void close(xmpp::StreamError error, std::string_view text = {}, std::string_view app_condition = {});
  // Every stanza queued for the peer, once, in order (deliveries and send()).
  virtual void on_stanza_sent(const std::shared_ptr<const std::string>&) {}
  // A delivery that found the send queue full: the stream is closing; the policy may
  // keep the stanza (c2s re-routes it with the unacknowledged ones).
  virtual void on_overflow(std::shared_ptr<const std::string>) {}
  // Why the stream ended: the peer closed its stream cleanly, or we sent this error.
  bool peer_closed() const { return peer_closed_; }
  std::optional<xmpp::StreamError> close_error() const { return close_error_; }
  bool finished() const { return finished_; }
  // Closes the socket now, without a stream error; on_closed() runs. Idempotent.
  void finish();
  // Expect a fresh stream header through a fresh parser (after SASL success).
  void restart_stream();
  void set_authenticated(bool value) { authenticated_ = value; }
  // Authenticated without a stream restart (s2s dialback): the unauthenticated deadline no
  // longer applies and the parser takes full-size stanzas from now on.
  void mark_authenticated();
  bool finished_or_closing() const { return closing_ || finished_; }

  core::Server& server_;
  core::Worker& worker_;
  const config::Listener listener_;
  State state_ = State::wait_header;
  bool tls_ = false;
  bool authenticated_ = false;
  std::string domain_;          // from the first stream header; cannot change on restart
  std::string peer_from_;       // the header's 'from' as a domain (s2s), empty if none
  std::string remote_address_;  // the peer's IP address
  std::string stream_id_;

  SSL* native_ssl() { return stream_.native_handle(); }

 private:
  struct Pending {
    enum class Kind { open, element, close } kind;
    xml::Element element;
  };

  // xml::StreamHandler
  void on_stream_open(xml::Element header) override;
  void on_stanza(xml::Element stanza) override;
  void on_stream_close() override;

  awaitable<void> reader();
  awaitable<void> keepalive();
  awaitable<void> writer();
  awaitable<void> process_pending();
  awaitable<void> on_header(const xml::Element& header);
  awaitable<void> dispatch(xml::Element element);
  awaitable<void> start_tls();
  awaitable<void> handshake();
  awaitable<std::size_t> read_some();
  void new_parser();
  std::string header_xml(std::string_view from) const;
  void enqueue(std::shared_ptr<const std::string> xml, bool stanza);

  net::TlsSocket stream_;
  std::string content_ns_;
  std::unique_ptr<xml::StreamParser> parser_;
  bool parser_replaced_ = false;
  std::deque<Pending> pending_;

  std::deque<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  asio::steady_timer wake_;        // wakes the writer
  asio::steady_timer flushed_;     // wakes flush() waiters
  asio::steady_timer deadline_;    // unauthenticated lifetime, then closing grace
  asio::steady_timer keepalive_;   // out-of-contact detection
  std::chrono::steady_clock::time_point last_read_;

  bool header_sent_ = false;
  bool handshaking_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool peer_closed_ = false;
  bool output_closed_ = false;  // </stream:stream> is queued: nothing may follow
  std::optional<xmpp::StreamError> close_error_;
  std::size_t track_id_ = 0;
};

}  // namespace herald::stream
