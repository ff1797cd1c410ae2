// Client-to-server policy on top of stream::StreamIn: SASL (RFC 6120 §6), resource binding
// (§7), and handing stanzas of an established session to the router.
#pragma once

#include <memory>
#include <vector>

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

 private:
  void add_features(xml::Element& features) override;
  awaitable<void> handle_element(xml::Element element) override;
  void on_closed() override;
  void send_keepalive_probe() override;

  awaitable<void> handle_sasl(const xml::Element& element);
  awaitable<void> run_mechanism(sasl::Step step);
  void sasl_failure(sasl::Condition condition, std::string_view log_text = {});
  awaitable<void> handle_bind(const xml::Element& iq);
  void send_iq_error(const xml::Element& iq, xmpp::StanzaError error, std::string_view text = {});

  sasl::ConnectionInfo connection_info_;
  std::vector<std::string> offered_;
  std::unique_ptr<sasl::Mechanism> mechanism_;
  std::string username_;  // authenticated localpart
  unsigned auth_failures_ = 0;
  unsigned bind_failures_ = 0;
  bool bound_ = false;
};

}  // namespace herald::c2s
