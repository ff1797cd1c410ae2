// An incoming server-to-server stream (RFC 6120) on the s2s listeners: STARTTLS or direct
// TLS (stream::StreamIn), then the peer authenticates each domain it speaks for with SASL
// EXTERNAL (XEP-0178, its certificate valid for that domain) or Server Dialback
// (XEP-0220: we ask the domain's authoritative server over our own outgoing stream). The
// authorized (remote domain, local domain) pairs are tracked per stream; a stanza whose
// 'from' domain is not authorized for its 'to' domain closes the stream with
// <invalid-from/>. We also answer <db:verify/> for keys this server issued.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "federation/cert_names.hpp"
#include "server/stream/stream_in.hpp"

namespace herald::federation {

class S2sManager;

class S2sIn final : public stream::StreamIn {
 public:
  // The core::ConnectionHandler for s2s listeners.
  static void accept(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                     const config::Listener& listener);

  S2sIn(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket, const config::Listener& listener);

 private:
  void add_features(xml::Element& features) override;
  awaitable<void> handle_element(xml::Element element) override;
  void on_closed() override;

  const CertCheck& peer_check();
  awaitable<void> handle_external(const xml::Element& auth);
  awaitable<void> handle_result(const xml::Element& result);
  awaitable<void> dialback(std::string local, std::string remote, std::string key);
  void handle_verify(const xml::Element& verify);
  awaitable<void> handle_stanza(xml::Element stanza);
  void sasl_failure(std::string_view condition, std::string_view why);

  S2sManager& manager_;
  std::optional<CertCheck> check_;  // of the peer's certificate for peer_from_
  std::set<std::pair<std::string, std::string>> authorized_;  // (remote, local)
  unsigned pending_dialbacks_ = 0;
  bool bidi_ = false;  // the peer enabled XEP-0288 bidirectionality
  void authorized(const std::string& remote, const std::string& local, bool restart_follows);
};

}  // namespace herald::federation
