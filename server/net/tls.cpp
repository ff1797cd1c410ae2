#include "server/net/tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace herald::net {
namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

std::unique_ptr<asio::ssl::context> make_context(const config::Host& host) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_ECDH_USE);
  // Forward-secret AEAD suites only for TLS 1.2; TLS 1.3 suites are all fine.
  SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1");
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  if (SSL_CTX_use_certificate_chain_file(native, host.certificate.c_str()) != 1) {
    throw config::ConfigError(fmt::format("host '{}': cannot use certificate {}: {}", host.domain,
                                          host.certificate.string(), openssl_error()));
  }
  if (SSL_CTX_use_PrivateKey_file(native, host.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw config::ConfigError(fmt::format("host '{}': cannot use private key {}: {}", host.domain,
                                          host.key.string(), openssl_error()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    throw config::ConfigError(fmt::format("host '{}': private key {} does not match certificate {}",
                                          host.domain, host.key.string(), host.certificate.string()));
  }
  return ctx;
}

}  // namespace

TlsContexts::TlsContexts(const std::vector<config::Host>& hosts) {
  for (const auto& h : hosts) contexts_.emplace(h.domain, make_context(h));
  default_domain_ = hosts.front().domain;
  // Every context carries the callback: OpenSSL calls it on the context the SSL object
  // was created from.
  for (auto& [domain, ctx] : contexts_) {
    SSL_CTX_set_tlsext_servername_callback(ctx->native_handle(), &TlsContexts::on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx->native_handle(), this);
  }
  // Make the first configured host the default (map order is alphabetical).
  if (contexts_.begin()->first != default_domain_) {
    auto node = contexts_.extract(default_domain_);
    auto rest = std::move(contexts_);
    contexts_.clear();
    contexts_.insert(std::move(node));
    contexts_.merge(rest);
  }
}

asio::ssl::context* TlsContexts::find(std::string_view domain) {
  auto it = contexts_.find(domain);
  return it == contexts_.end() ? nullptr : it->second.get();
}

int TlsContexts::on_servername(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<TlsContexts*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_NOACK;
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto* ctx = self->find(lower)) SSL_set_SSL_CTX(ssl, ctx->native_handle());
  // An unknown name keeps the default certificate; the stream header's 'to' decides later.
  return SSL_TLSEXT_ERR_OK;
}

std::string sni_name(SSL* ssl) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return name ? std::string(name) : std::string();
}

std::vector<sasl::ChannelBinding> channel_bindings(SSL* ssl) {
  std::vector<sasl::ChannelBinding> out;
  // tls-exporter is only safe where the exporter is bound to the handshake (RFC 9266 §3).
  if (SSL_version(ssl) >= TLS1_3_VERSION || SSL_get_extms_support(ssl) == 1) {
    unsigned char buf[32];
    static constexpr char label[] = "EXPORTER-Channel-Binding";
    if (SSL_export_keying_material(ssl, buf, sizeof buf, label, sizeof label - 1, nullptr, 0, 0) == 1) {
      out.push_back({"tls-exporter", std::string(reinterpret_cast<char*>(buf), sizeof buf)});
    }
  }
  // tls-unique (RFC 5929 §3): the first Finished message of the handshake. Defined only up
  // to TLS 1.2, and safe there only with extended master secret (RFC 7627), so it is
  // advertised only then. On TLS 1.3 it is accepted, not advertised, as the value OpenSSL-
  // based clients that ignore XEP-0440 compute (the client's Finished; slixmpp does this):
  // still unique to this connection, since the Finished MAC covers the whole handshake.
  {
    unsigned char finished[EVP_MAX_MD_SIZE];
    std::size_t len = 0;
    const bool tls13 = SSL_version(ssl) >= TLS1_3_VERSION;
    const bool first_is_client = tls13 || !SSL_session_reused(ssl);  // resumed 1.2: server's comes first
    len = first_is_client ? SSL_get_peer_finished(ssl, finished, sizeof finished)
                          : SSL_get_finished(ssl, finished, sizeof finished);
    if (len > 0 && (tls13 || SSL_get_extms_support(ssl) == 1)) {
      out.push_back({"tls-unique", std::string(reinterpret_cast<char*>(finished), len), !tls13});
    }
  }
  // tls-server-end-point: hash of our certificate with its signature hash, SHA-256 for
  // MD5/SHA-1 (RFC 5929 §4.1).
  if (X509* cert = SSL_get_certificate(ssl)) {
    int md_nid = NID_undef;
    const EVP_MD* md = nullptr;
    if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) == 1 && md_nid != NID_undef &&
        md_nid != NID_md5 && md_nid != NID_sha1) {
      md = EVP_get_digestbynid(md_nid);
    }
    if (!md) md = EVP_sha256();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, md, digest, &len) == 1) {
      out.push_back({"tls-server-end-point", std::string(reinterpret_cast<char*>(digest), len)});
    }
  }
  return out;
}

}  // namespace herald::net
