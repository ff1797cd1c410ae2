// Who a server certificate says it is, and whether that is the domain we expect: the
// service identity check of RFC 9525 (which replaces RFC 6125) as RFC 6120 §13.7.1.2 and
// XEP-0178 apply it to XMPP servers, plus the chain verification it always goes with.
//
// Reference identifiers for a peer domain D are:
//   - DNS-ID  D                      (dNSName; a "*" left-most label may stand for one label)
//   - SRV-ID  _xmpp-server.D         (otherName SRVName, RFC 4985; also _xmpps-server.D for
//                                     direct TLS, XEP-0368)
//   - XmppAddr D                     (otherName id-on-xmppAddr, RFC 6120 §13.7.1.4)
// Any one of them matching is enough. The subject CN is never an identity unless the caller
// asks for the legacy fallback (see matches_domain).
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::federation {

// The names a certificate presents, as written in it (not normalised). Values that cannot be
// names at all (embedded NUL bytes, wrong ASN.1 string type for the name form) are left out.
struct PeerIdentities {
  std::vector<std::string> dns_ids;       // subjectAltName dNSName, e.g. "*.example.org"
  std::vector<std::string> srv_ids;       // otherName SRVName (1.3.6.1.5.5.7.8.7, IA5String),
                                          // e.g. "_xmpp-server.example.org"
  std::vector<std::string> xmpp_addrs;    // otherName id-on-xmppAddr (1.3.6.1.5.5.7.8.5,
                                          // UTF8String), e.g. "example.org"
  std::vector<std::string> common_names;  // subject CN, UTF-8; for reporting (and cn_fallback)

  bool has_san_identity() const {
    return !dns_ids.empty() || !srv_ids.empty() || !xmpp_addrs.empty();
  }
};

// Which SRV service the connection was made for. A direct-TLS connection (XEP-0368) accepts
// both "_xmpps-server" and "_xmpp-server" SRV-IDs, since XEP-0368 asks for the same
// validation as STARTTLS and certificates commonly carry only the latter.
enum class Service { xmpp_server, xmpps_server };

// Extracts the names from a certificate. Never throws on odd certificates; a certificate
// with no (or an unparsable, or a duplicated) subjectAltName extension yields no SAN names.
// Does not take ownership of `cert`.
PeerIdentities identities_of(X509* cert);

// True if any presented identity names `domain` (RFC 9525 §6). Pure: no I/O, no clock.
//
// `domain` is the peer's domain as Herald holds it: a prepared JID domainpart (U-labels,
// lowercase; RFC 7622) or its A-label form; an absolute name's one trailing dot is ignored.
// DNS-IDs and SRV-IDs are compared with the A-label form of `domain` (UTS #46 ToASCII),
// label by label, ASCII case-insensitively; XmppAddr values are compared with `domain` after
// both are prepared as JID domainparts, so A-label and U-label spellings are equal.
//
// Wildcards (RFC 9525 §6.3, RFC 6120 §13.7.1.2): only a DNS-ID whose complete left-most label
// is "*" and which has no other "*" is a wildcard, and it stands for exactly one non-empty
// label: "*.example.org" matches "a.example.org" but neither "example.org" nor
// "a.b.example.org". Partial wildcards ("f*.example.org", "*x.example.org") and wildcards in
// any other position are invalid presented identifiers and match nothing. A wildcard must be
// followed by at least two labels, so "*.org" matches nothing (a cheap guard against
// public-suffix wildcards; deeper suffixes such as "*.co.uk" are the CA's business). SRV-IDs
// and XmppAddrs never contain wildcards.
//
// cn_fallback: RFC 9525 §2 forbids using the subject CN as an identifier; RFC 6125 §6.4.4
// allowed it only when the certificate has no DNS-ID, SRV-ID or XmppAddr at all. Set it to
// true to get that legacy behaviour (CN treated like a DNS-ID, wildcards included) for old
// peers; it never applies when any SAN identity is present. Off by default.
bool matches_domain(const PeerIdentities& ids, std::string_view domain,
                    Service service = Service::xmpp_server, bool cn_fallback = false);

// One line for logs and heraldctl: "DNS names: a, b; SRV names: _xmpp-server.a; XmppAddr: c;
// CN: d", empty kinds left out, "no names" if there are none. Control and non-ASCII bytes in
// names from the DNS/SRV kinds, and control bytes in the UTF-8 kinds, are shown as \xNN so a
// certificate cannot forge log lines.
std::string describe(const PeerIdentities& ids);

struct CertCheck {
  bool chain_ok = false;   // the chain leads to a trusted CA and every certificate is valid now
  std::string chain_error; // why not, in OpenSSL's words plus the depth; empty when chain_ok
  bool name_ok = false;    // matches_domain(ids, domain) with the defaults
  PeerIdentities ids;      // of the leaf (empty if there is no certificate)
  std::optional<std::chrono::system_clock::time_point> not_after;  // of the leaf

  bool ok() const { return chain_ok && name_ok; }
};

// The peer certificate of an established TLS connection. Chain validity is what OpenSSL
// recorded during the handshake (SSL_get_verify_result), so the SSL_CTX must have had the
// trust store loaded and, on the accepting side, must have requested a client certificate
// (SSL_VERIFY_PEER, with a verify callback that lets the handshake continue so that dialback
// remains possible). No certificate -> chain_ok false with "no certificate presented".
CertCheck check_peer(SSL* ssl, std::string_view domain);

// Offline variant for `heraldctl check certs`: verifies `leaf` with the untrusted
// intermediates `chain` (may be null) against the CA certificates in the PEM file
// `ca_file`, for TLS server use (X509_PURPOSE_SSL_SERVER), at the current time. A CA file
// that cannot be read is reported in chain_error. Takes ownership of nothing.
CertCheck check_chain(X509* leaf, STACK_OF(X509) * chain, const std::string& ca_file,
                      std::string_view domain);
// The same against a store loaded once (load_ca_store): what a server does per connection.
// An X509_STORE may be shared by threads for verification.
CertCheck check_chain(X509* leaf, STACK_OF(X509) * chain, X509_STORE* store, std::string_view domain);
struct CaStoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using CaStore = std::unique_ptr<X509_STORE, CaStoreFree>;
// The CA certificates of a PEM file; empty and `error` set when it cannot be read.
CaStore load_ca_store(const std::string& ca_file, std::string& error);
// Verifies leaf+chain against `store`, setting check.chain_ok or check.chain_error.
void verify_with(CertCheck& check, X509* leaf, STACK_OF(X509) * chain, X509_STORE* store);

}  // namespace herald::federation
