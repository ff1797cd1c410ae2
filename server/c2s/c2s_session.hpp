// Client-to-server policy on top of stream::StreamIn: SASL (RFC 6120 §6), resource binding
// (§7), and handing stanzas of an established session to the router.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "server/c2s/csi.hpp"
#include "server/c2s/sm_queue.hpp"
#include "server/sasl/mechanism.hpp"
#include "server/stream/stream_in.hpp"

namespace herald::c2s {

class C2sSession final : public stream::StreamIn {
 public:
  // The core::ConnectionHandler for c2s listeners.
  static void accept(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                     const config::Listener& listener);

  C2sSession(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
             const config::Listener& listener);

  // Thread-safe (posts to the session's worker). Handles hibernation (XEP-0198), stanzas
  // forwarded after a resumption, and holding while the client is inactive (XEP-0352).
  void deliver(std::shared_ptr<const std::string> xml) override;
  void close_with(xmpp::StreamError error, std::string text) override;

 private:
  struct Resumption;  // what a resumed session hands to its successor
  enum class ResumeFailure { not_found, handled_too_high };

  void add_features(xml::Element& features) override;
  awaitable<void> handle_element(xml::Element element) override;
  void on_closed() override;
  void send_keepalive_probe() override;

  awaitable<void> handle_sasl(const xml::Element& element);
  awaitable<void> run_mechanism(sasl::Step step);
  void sasl_failure(sasl::Condition condition, std::string_view log_text = {});
  awaitable<void> handle_bind(const xml::Element& iq);
  void send_iq_error(const xml::Element& iq, xmpp::StanzaError error, std::string_view text = {});

  // XEP-0198 stream management.
  void on_stanza_sent(const std::shared_ptr<const std::string>& xml) override;
  void on_overflow(std::shared_ptr<const std::string> xml) override;
  void handle_sm(const xml::Element& element);
  awaitable<void> handle_resume(const xml::Element& element);
  void sm_failed(std::string_view condition);  // <failed/> with a stanza error condition
  void request_ack();
  void handle_ack(const xml::Element& a);
  void close_handled_too_high(std::uint32_t h);
  // On the old session's worker: give the session up to `next` (or refuse).
  void surrender(std::shared_ptr<C2sSession> next, std::uint32_t h);
  // On the new session's worker.
  void adopt(const std::shared_ptr<C2sSession>& old, Resumption r);
  void resume_failed(ResumeFailure why, std::uint32_t h, std::uint32_t sent);
  void hibernate();
  void untrack_hibernation();
  void expire();
  void end_session();
  // Queues stanzas for drain_reroutes(), one drain at a time so order is kept. `last`:
  // the session's end; after the drain it leaves the directory and closed hooks run.
  void reroute(std::deque<SmQueue::Item> unacked, bool last = false);
  awaitable<void> drain_reroutes(bool last);
  // XEP-0352.
  void flush_held();

  sasl::ConnectionInfo connection_info_;
  std::vector<std::string> offered_;
  std::unique_ptr<sasl::Mechanism> mechanism_;
  std::string username_;  // authenticated localpart
  unsigned auth_failures_ = 0;
  unsigned bind_failures_ = 0;
  bool bound_ = false;

  struct Sm {
    bool enabled = false;
    bool resumable = false;
    std::string id;               // SM-ID for resumption (CSPRNG)
    SmQueue out;                  // stanzas sent to the client, not yet acknowledged
    std::uint32_t handled_in = 0; // stanzas from the client handled (mod 2^32)
    bool ack_requested = false;   // an <r/> of ours is unanswered
  } sm_;
  bool hibernating_ = false;      // connection lost, waiting to be resumed
  bool resumed_away_ = false;     // a new connection took this session over
  bool resuming_ = false;         // this connection is taking over another session
  std::weak_ptr<C2sSession> successor_;
  std::unique_ptr<asio::steady_timer> hibernation_;
  asio::steady_timer resume_wait_;

  std::deque<SmQueue::Item> reroute_pending_;
  bool rerouting_ = false;
  std::size_t drain_track_ = 0;        // Worker::track id while re-routing at the end
  std::size_t hibernation_track_ = 0;  // Worker::track id while hibernating
  bool handling_ = false;              // a stanza from the client is being routed
  struct DeferredSurrender {
    std::shared_ptr<C2sSession> next;
    std::uint32_t h;
  };
  std::optional<DeferredSurrender> deferred_surrender_;

  bool inactive_ = false;         // XEP-0352
  CsiBuffer held_;
};

}  // namespace herald::c2s
