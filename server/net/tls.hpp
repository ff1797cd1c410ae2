// TLS contexts for the served domains: TLS 1.2+ only, no compression, SNI chooses the
// domain's certificate (RFC 7590, RFC 6120 §5), and channel-binding data for SCRAM-PLUS.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/core/config/config.hpp"
#include "server/net/asio.hpp"
#include "server/sasl/mechanism.hpp"

namespace herald::net {

class TlsContexts {
 public:
  // Throws config::ConfigError naming the file when a certificate or key cannot be used.
  explicit TlsContexts(const std::vector<config::Host>& hosts);

  // The context new connections start with; SNI may switch to another domain's.
  asio::ssl::context& default_context() { return *contexts_.begin()->second; }
  asio::ssl::context* find(std::string_view domain);

 private:
  static int on_servername(SSL* ssl, int* alert, void* arg);
  std::map<std::string, std::unique_ptr<asio::ssl::context>, std::less<>> contexts_;
  std::string default_domain_;
};

// Channel bindings available on an established TLS connection: tls-exporter (RFC 9266; only
// for TLS 1.3 or with extended master secret) and tls-server-end-point (RFC 5929).
std::vector<sasl::ChannelBinding> channel_bindings(SSL* ssl);
// The SNI name the client asked for, or empty.
std::string sni_name(SSL* ssl);

}  // namespace herald::net
