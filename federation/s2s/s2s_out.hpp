// One outgoing server-to-server stream for a (local domain, remote domain) pair (RFC 6120):
// resolve (SRV per RFC 6120 §3.2 and XEP-0368), try each target and address in order,
// TCP, TLS (STARTTLS or direct; SNI = the remote domain), the peer's certificate checked
// against the CA file and the domain (RFC 6125), then SASL EXTERNAL (XEP-0178) or Server
// Dialback (XEP-0220). Lives on one worker; every member runs there.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "server/xml/element.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/stanza.hpp"

namespace herald::core {
class Worker;
}

namespace herald::federation {

class S2sManager;

class S2sOut : public std::enable_shared_from_this<S2sOut>, public xml::StreamHandler {
 public:
  S2sOut(S2sManager& manager, core::Worker& worker, std::string local, std::string remote);
  ~S2sOut() override;

  void start();
  // Queues a stanza (jabber:server); only once the manager was told the stream is ready.
  // Stanzas this stream could not write go back to the manager when it ends.
  void send(xml::Element stanza);
  void close();

  const std::string& local() const { return local_; }
  // Target piggybacking (XEP-0220 §2.4): authorize another of our domains on this ready
  // stream with a dialback request, if the peer accepts dialback with errors here. True
  // once the peer said valid; the stream then carries that domain's stanzas too.
  bool can_piggyback() const { return ready_ && !closing_ && piggyback_ok_; }
  awaitable<bool> add_local(std::string local);
  const std::string& remote() const { return remote_; }

  // XEP-0220 §2.1.2: asks this stream's peer (the authoritative server of remote()) whether
  // `key` is the dialback key it gave for stream `id` to local(). nullopt: no answer in
  // time or the stream failed. Sent as soon as the transport is up, even before this
  // stream is authenticated (two servers dialing back each other must not wait on each
  // other).
  // `local` is the domain the request speaks for (ours; several with piggybacking).
  awaitable<std::optional<bool>> verify(std::string local, std::string id, std::string key);

 private:
  struct Event {
    enum class Kind { open, element, close } kind;
    xml::Element element;
  };
  struct Verification {
    std::optional<bool> answer;
    std::shared_ptr<asio::steady_timer> wake;
  };

  void on_stream_open(xml::Element header) override;
  void on_stanza(xml::Element stanza) override;
  void on_stream_close() override;

  awaitable<void> run();
  awaitable<void> run_stream();
  // Connects and negotiates with one address; true when the stream is authenticated.
  awaitable<bool> attempt(const std::string& host, const asio::ip::tcp::endpoint& endpoint, bool direct_tls,
                          std::string& why);
  awaitable<void> serve();
  awaitable<void> reverse_stanza(xml::Element stanza);
  awaitable<void> idle_watch();
  void post_write(std::shared_ptr<const std::string> data, std::shared_ptr<asio::steady_timer> done);
  void start_drain();
  void abort_transport();
  std::vector<xml::Element> take_unsent();
  awaitable<void> drain();
  awaitable<std::optional<Event>> next();
  awaitable<void> write(std::string data);
  awaitable<void> open_stream();  // header out, header and features in
  void new_parser();
  void take_verify_answer(const xml::Element& el);
  void take_piggyback_answer(const xml::Element& el);
  void send_verify_requests();
  void reset_transport();

  S2sManager& manager_;
  core::Worker& worker_;
  std::string local_;
  std::string remote_;

  // Shared: a write in flight keeps the stream it writes to alive across a reconnect.
  std::shared_ptr<asio::ssl::stream<asio::ip::tcp::socket>> stream_;
  bool tls_ = false;
  bool transport_up_ = false;  // header exchanged on the final (TLS) stream: verify requests may go
  bool ready_ = false;
  bool closing_ = false;
  std::unique_ptr<xml::StreamParser> parser_;
  std::deque<Event> events_;
  std::array<char, 8192> buffer_{};
  std::string stream_id_;  // the id the peer gave its stream
  std::optional<xml::Element> features_;
  bool peer_dialback_ = false;  // the peer's header declared jabber:server:dialback
  bool bidi_ = false;           // XEP-0288 enabled: the peer may send us stanzas here
  bool piggyback_ok_ = false;   // the final features offer dialback with errors
  std::set<std::string> locals_;  // our domains authenticated on this stream
  std::map<std::string, std::shared_ptr<Verification>> piggybacks_;  // by local domain

  struct Write {
    std::shared_ptr<const std::string> data;
    std::shared_ptr<asio::steady_timer> done;  // cancelled once written (negotiation waits on it)
    std::optional<xml::Element> stanza;        // a routed stanza, handed back if never written
  };
  std::deque<Write> out_;
  std::size_t queued_bytes_ = 0;
  std::vector<xml::Element> unsent_;
  bool writing_ = false;
  bool write_failed_ = false;
  asio::steady_timer idle_;
  std::chrono::steady_clock::time_point last_use_;

  struct VerifyRequest {
    std::string local, id, key;
  };
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Verification>> verifications_;  // by (local, id)
  std::deque<VerifyRequest> verify_out_;  // not yet sent
};

}  // namespace herald::federation
