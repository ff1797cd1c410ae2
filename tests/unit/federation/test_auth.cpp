// Peer identity for federation: RFC 9525 / RFC 6120 §13.7.1.2 name matching, chain checks on
// certificates made here with a throwaway CA, and XEP-0185 dialback keys.
#include <doctest/doctest.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "federation/cert_names.hpp"
#include "federation/dialback_key.hpp"
#include "server/sasl/crypto.hpp"

using namespace herald::federation;

namespace {

// ---------------------------------------------------------------------------------------
// Name matching, without certificates

PeerIdentities dns(std::vector<std::string> names) {
  PeerIdentities ids;
  ids.dns_ids = std::move(names);
  return ids;
}
PeerIdentities srv(std::vector<std::string> names) {
  PeerIdentities ids;
  ids.srv_ids = std::move(names);
  return ids;
}
PeerIdentities xmpp_addr(std::vector<std::string> names) {
  PeerIdentities ids;
  ids.xmpp_addrs = std::move(names);
  return ids;
}
PeerIdentities cn(std::vector<std::string> names) {
  PeerIdentities ids;
  ids.common_names = std::move(names);
  return ids;
}

struct Row {
  std::string presented;
  std::string reference;
  bool match;
};

// ---------------------------------------------------------------------------------------
// Certificates, made with the OpenSSL C API

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * p) const { sk_X509_free(p); }  // does not free the certs
};
struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

Pkey make_key() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  REQUIRE(key);
  return key;
}

// A subjectAltName entry: dNSName, or otherName with an OID and a string of some ASN.1 type.
struct San {
  enum Kind { dns, other } kind;
  std::string value;
  const char* oid = nullptr;        // for other
  int asn1_type = V_ASN1_UTF8STRING;  // for other
};
San dns_san(std::string v) { return {San::dns, std::move(v)}; }
San xmpp_san(std::string v) { return {San::other, std::move(v), "1.3.6.1.5.5.7.8.5", V_ASN1_UTF8STRING}; }
San srv_san(std::string v) { return {San::other, std::move(v), "1.3.6.1.5.5.7.8.7", V_ASN1_IA5STRING}; }

struct CertSpec {
  std::vector<std::string> cns;
  std::vector<San> sans;
  long not_before = -3600;           // seconds from now
  long not_after = 30L * 24 * 3600;  // seconds from now
  bool ca = false;
  const char* eku = nullptr;         // e.g. "clientAuth"
  long serial = 1;
};

void add_conf_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

GENERAL_NAME* general_name(const San& san) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  REQUIRE(gn != nullptr);
  const auto* data = reinterpret_cast<const unsigned char*>(san.value.data());
  const int len = static_cast<int>(san.value.size());
  if (san.kind == San::dns) {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    REQUIRE(ASN1_STRING_set(s, data, len) == 1);
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    return gn;
  }
  ASN1_STRING* s = ASN1_STRING_type_new(san.asn1_type);
  REQUIRE(s != nullptr);
  REQUIRE(ASN1_STRING_set(s, data, len) == 1);
  ASN1_TYPE* value = ASN1_TYPE_new();
  ASN1_TYPE_set(value, san.asn1_type, s);
  ASN1_OBJECT* oid = OBJ_txt2obj(san.oid, 1);
  REQUIRE(oid != nullptr);
  REQUIRE(GENERAL_NAME_set0_othername(gn, oid, value) == 1);
  return gn;
}

// Signed by `issuer_key` as `issuer`; self-signed when issuer is null.
Cert make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  Cert cert(X509_new());
  REQUIRE(cert);
  X509* x = cert.get();
  REQUIRE(X509_set_version(x, X509_VERSION_3) == 1);
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x), spec.serial) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(x), spec.not_before) != nullptr);
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(x), spec.not_after) != nullptr);
  X509_NAME* name = X509_get_subject_name(x);
  for (const auto& c : spec.cns) {
    REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(c.c_str()), -1, -1, 0) == 1);
  }
  REQUIRE(X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name) == 1);
  REQUIRE(X509_set_pubkey(x, key) == 1);
  X509* signer = issuer != nullptr ? issuer : x;
  if (spec.ca) {
    add_conf_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_conf_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_conf_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
  }
  if (spec.eku != nullptr) add_conf_ext(x, signer, NID_ext_key_usage, spec.eku);
  if (!spec.sans.empty()) {
    GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
    REQUIRE(names != nullptr);
    for (const auto& san : spec.sans) REQUIRE(sk_GENERAL_NAME_push(names, general_name(san)) > 0);
    REQUIRE(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1);
    GENERAL_NAMES_free(names);
  }
  REQUIRE(X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

struct Ca {
  Pkey key = make_key();
  Cert cert;
  explicit Ca(const std::string& cn, long serial = 100) {
    CertSpec spec;
    spec.cns = {cn};
    spec.ca = true;
    spec.serial = serial;
    spec.not_after = 365L * 24 * 3600;
    cert = make_cert(spec, key.get(), nullptr, nullptr);
  }
  Cert issue(const CertSpec& spec, EVP_PKEY* subject_key) const {
    return make_cert(spec, subject_key, cert.get(), key.get());
  }
};

// A directory under the system temp dir, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("herald-unit-fed-" + herald::sasl::random_id(8));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

std::string write_pem(const std::filesystem::path& file, const std::vector<X509*>& certs) {
  BIO* bio = BIO_new_file(file.c_str(), "w");
  REQUIRE(bio != nullptr);
  for (X509* c : certs) REQUIRE(PEM_write_bio_X509(bio, c) == 1);
  BIO_free(bio);
  return file.string();
}

std::chrono::seconds distance(std::chrono::system_clock::time_point a,
                              std::chrono::system_clock::time_point b) {
  return std::chrono::abs(std::chrono::duration_cast<std::chrono::seconds>(a - b));
}

// A TLS 1.3 handshake over an in-memory BIO pair: `server_cert` is presented by the server;
// the client trusts `trusted` (may be null) but does not abort on verification failure, as
// an s2s connector that may fall back to dialback would.
struct Handshake {
  std::unique_ptr<SSL_CTX, SslCtxFree> sctx{SSL_CTX_new(TLS_server_method())};
  std::unique_ptr<SSL_CTX, SslCtxFree> cctx{SSL_CTX_new(TLS_client_method())};
  std::unique_ptr<SSL, SslFree> server;
  std::unique_ptr<SSL, SslFree> client;

  Handshake(X509* server_cert, EVP_PKEY* server_key, X509* trusted) {
    REQUIRE(sctx);
    REQUIRE(cctx);
    REQUIRE(SSL_CTX_use_certificate(sctx.get(), server_cert) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(sctx.get(), server_key) == 1);
    if (trusted != nullptr) REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), trusted) == 1);
    SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_NONE, nullptr);
    server.reset(SSL_new(sctx.get()));
    client.reset(SSL_new(cctx.get()));
    REQUIRE(server);
    REQUIRE(client);
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    REQUIRE(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1);
    SSL_set_bio(client.get(), cb, cb);
    SSL_set_bio(server.get(), sb, sb);
    SSL_set_connect_state(client.get());
    SSL_set_accept_state(server.get());
    bool client_done = false;
    bool server_done = false;
    for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
      if (!client_done) client_done = SSL_do_handshake(client.get()) == 1;
      if (!server_done) server_done = SSL_do_handshake(server.get()) == 1;
    }
    REQUIRE(client_done);
    REQUIRE(server_done);
  }
};

}  // namespace

// =======================================================================================

TEST_CASE("DNS-ID matching: exact names and the wildcard rules") {
  const Row rows[] = {
      // exact, case-insensitive ASCII, one trailing dot ignored
      {"example.org", "example.org", true},
      {"EXAMPLE.org", "example.ORG", true},
      {"Example.Org", "eXaMpLe.oRg", true},
      {"example.org.", "example.org", true},
      {"example.org", "example.org.", true},
      {"example.org", "www.example.org", false},
      {"www.example.org", "example.org", false},
      {"example.org", "example.com", false},
      {"example.org", "anexample.org", false},
      {"xample.org", "example.org", false},
      {"example.org", "", false},
      {"", "example.org", false},
      {"example..org", "example..org", false},
      {".example.org", ".example.org", false},
      {"exa_mple.org", "exa_mple.org", false},
      // a complete left-most "*" label stands for exactly one label
      {"*.example.org", "a.example.org", true},
      {"*.example.org", "chat.example.org", true},
      {"*.example.org", "A.Example.ORG", true},
      {"*.EXAMPLE.ORG", "muc.example.org", true},
      {"*.example.org.", "a.example.org", true},
      {"*.example.org", "example.org", false},
      {"*.example.org", "a.b.example.org", false},
      {"*.example.org", "a.example.com", false},
      {"*.example.org", "aexample.org", false},
      {"*.example.org", ".example.org", false},
      {"*.a.example.org", "x.a.example.org", true},
      {"*.a.example.org", "x.b.example.org", false},
      // partial wildcards and wildcards anywhere else never match
      {"f*.example.org", "foo.example.org", false},
      {"*o.example.org", "foo.example.org", false},
      {"f*o.example.org", "foo.example.org", false},
      {"*.example.org", "*.example.org", false},
      {"**.example.org", "a.example.org", false},
      {"a.*.example.org", "a.b.example.org", false},
      {"*.*.example.org", "a.b.example.org", false},
      {"*.example.*", "a.example.org", false},
      {"example.*", "example.org", false},
      {"www.example.*", "www.example.org", false},
      {"xn--*.example.org", "xn--bcher-kva.example.org", false},
      // a wildcard needs at least two labels after it
      {"*.org", "example.org", false},
      {"*", "example", false},
      {"*", "example.org", false},
      {"*.", "example.", false},
      {"*.co.uk", "example.co.uk", true},  // indistinguishable from *.example.org without a PSL
      // IP literals are not DNS names, so neither exact DNS-IDs nor wildcards touch them
      {"127.0.0.1", "127.0.0.1", false},
      {"*.0.0.1", "127.0.0.1", false},
      // internationalised names: DNS-IDs hold A-labels; the reference may be either form
      {"xn--bcher-kva.example", "bücher.example", true},
      {"XN--BCHER-KVA.example", "bücher.example", true},
      {"xn--bcher-kva.example", "xn--bcher-kva.example", true},
      {"xn--bcher-kva.example", "BÜCHER.example", true},
      {"*.shop.example", "bücher.shop.example", true},
      {"xn--bcher-kva.example", "bucher.example", false},
      {"bücher.example", "bücher.example", false},  // a dNSName must be ASCII
      // a NUL byte cannot smuggle a suffix past the comparison
      {std::string("example.org\0.evil.example", 25), "example.org", false},
      {std::string("a.example.org\0", 14), "a.example.org", false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.presented);
    CAPTURE(row.reference);
    CHECK(matches_domain(dns({row.presented}), row.reference) == row.match);
    // the service type changes nothing for DNS-IDs
    CHECK(matches_domain(dns({row.presented}), row.reference, Service::xmpps_server) == row.match);
  }
}

TEST_CASE("DNS-ID: any one of several names is enough, none is a failure") {
  CHECK(matches_domain(dns({"other.net", "*.example.org", "example.org"}), "example.org"));
  CHECK(matches_domain(dns({"other.net", "*.example.org", "example.org"}), "muc.example.org"));
  CHECK_FALSE(matches_domain(dns({"other.net", "*.example.org"}), "example.org"));
  CHECK_FALSE(matches_domain(PeerIdentities{}, "example.org"));
}

TEST_CASE("SRV-ID matching (RFC 4985 SRVName)") {
  struct SrvRow {
    std::string presented;
    std::string reference;
    Service service;
    bool match;
  };
  const SrvRow rows[] = {
      {"_xmpp-server.example.org", "example.org", Service::xmpp_server, true},
      {"_XMPP-Server.Example.ORG", "example.org", Service::xmpp_server, true},
      {"_xmpp-server.example.org", "EXAMPLE.org", Service::xmpp_server, true},
      {"_xmpp-server.example.org.", "example.org", Service::xmpp_server, true},
      {"_xmpp-server.chat.example.org", "chat.example.org", Service::xmpp_server, true},
      {"_xmpp-server.example.org", "chat.example.org", Service::xmpp_server, false},
      {"_xmpp-server.chat.example.org", "example.org", Service::xmpp_server, false},
      {"_xmpp-client.example.org", "example.org", Service::xmpp_server, false},
      {"_xmpp-client.example.org", "example.org", Service::xmpps_server, false},
      {"_xmpps-server.example.org", "example.org", Service::xmpp_server, false},
      {"_xmpps-server.example.org", "example.org", Service::xmpps_server, true},
      {"_xmpp-server.example.org", "example.org", Service::xmpps_server, true},
      {"xmpp-server.example.org", "example.org", Service::xmpp_server, false},
      {"_xmpp-server", "example.org", Service::xmpp_server, false},
      {"example.org", "example.org", Service::xmpp_server, false},
      {"_xmpp-server.*.org", "example.org", Service::xmpp_server, false},
      {"_xmpp-server.*.example.org", "a.example.org", Service::xmpp_server, false},
      {"_xmpp-server.example.org", "_xmpp-server.example.org", Service::xmpp_server, false},
      {"_xmpp-server.xn--bcher-kva.example", "bücher.example", Service::xmpp_server, true},
      {"_xmpp-server.bücher.example", "bücher.example", Service::xmpp_server, false},
      {std::string("_xmpp-server.example.org\0x", 26), "example.org", Service::xmpp_server, false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.presented);
    CAPTURE(row.reference);
    CAPTURE(static_cast<int>(row.service));
    CHECK(matches_domain(srv({row.presented}), row.reference, row.service) == row.match);
  }
}

TEST_CASE("XmppAddr matching (id-on-xmppAddr)") {
  CHECK(matches_domain(xmpp_addr({"example.org"}), "example.org"));
  CHECK(matches_domain(xmpp_addr({"Example.ORG"}), "example.org"));
  CHECK(matches_domain(xmpp_addr({"example.org."}), "example.org"));
  CHECK(matches_domain(xmpp_addr({"bücher.example"}), "bücher.example"));
  CHECK(matches_domain(xmpp_addr({"bücher.example"}), "xn--bcher-kva.example"));
  CHECK(matches_domain(xmpp_addr({"xn--bcher-kva.example"}), "bücher.example"));
  CHECK(matches_domain(xmpp_addr({"other.net", "example.org"}), "example.org"));
  CHECK_FALSE(matches_domain(xmpp_addr({"other.net"}), "example.org"));
  CHECK_FALSE(matches_domain(xmpp_addr({"chat.example.org"}), "example.org"));
  CHECK_FALSE(matches_domain(xmpp_addr({"user@example.org"}), "example.org"));
  CHECK_FALSE(matches_domain(xmpp_addr({"example.org/resource"}), "example.org"));
  CHECK_FALSE(matches_domain(xmpp_addr({"*.example.org"}), "a.example.org"));  // no wildcards
  CHECK_FALSE(matches_domain(xmpp_addr({""}), "example.org"));
  CHECK_FALSE(matches_domain(xmpp_addr({"example.org"}), ""));
}

TEST_CASE("the identity types do not stand in for each other") {
  // An XmppAddr is not a DNS-ID: a wildcard written there means nothing.
  CHECK_FALSE(matches_domain(xmpp_addr({"*.example.org"}), "a.example.org"));
  // An SRV-ID's domain part is not a DNS-ID for itself.
  CHECK_FALSE(matches_domain(srv({"_xmpp-server.example.org"}), "_xmpp-server.example.org"));
  // A DNS-ID that fails does not stop an XmppAddr or SRV-ID from matching.
  PeerIdentities ids;
  ids.dns_ids = {"other.net"};
  ids.xmpp_addrs = {"example.org"};
  CHECK(matches_domain(ids, "example.org"));
  ids.xmpp_addrs.clear();
  ids.srv_ids = {"_xmpp-server.example.org"};
  CHECK(matches_domain(ids, "example.org"));
}

TEST_CASE("CN is ignored unless cn_fallback, and even then only without SAN identities") {
  CHECK_FALSE(matches_domain(cn({"example.org"}), "example.org"));
  CHECK_FALSE(matches_domain(cn({"example.org"}), "example.org", Service::xmpp_server, false));
  CHECK(matches_domain(cn({"example.org"}), "example.org", Service::xmpp_server, true));
  CHECK(matches_domain(cn({"EXAMPLE.org"}), "example.org", Service::xmpp_server, true));
  CHECK(matches_domain(cn({"Example Products, Inc.", "example.org"}), "example.org",
                       Service::xmpp_server, true));
  // DNS-ID rules apply to the CN, wildcards included
  CHECK(matches_domain(cn({"*.example.org"}), "a.example.org", Service::xmpp_server, true));
  CHECK_FALSE(matches_domain(cn({"*.example.org"}), "example.org", Service::xmpp_server, true));
  CHECK_FALSE(matches_domain(cn({"*.org"}), "example.org", Service::xmpp_server, true));
  CHECK_FALSE(matches_domain(cn({"Example Products, Inc."}), "example.org", Service::xmpp_server, true));
  // any SAN identity switches the fallback off
  for (auto ids : {dns({"other.net"}), srv({"_xmpp-server.other.net"}), xmpp_addr({"other.net"})}) {
    ids.common_names = {"example.org"};
    CHECK_FALSE(matches_domain(ids, "example.org", Service::xmpp_server, true));
    CHECK_FALSE(matches_domain(ids, "example.org"));
  }
}

TEST_CASE("describe: one line for operators") {
  CHECK(describe(PeerIdentities{}) == "no names");
  PeerIdentities ids;
  ids.dns_ids = {"example.org", "*.example.org"};
  ids.srv_ids = {"_xmpp-server.example.org"};
  ids.xmpp_addrs = {"bücher.example"};
  ids.common_names = {"Example Products, Inc."};
  CHECK(describe(ids) ==
        "DNS names: example.org, *.example.org; SRV names: _xmpp-server.example.org; "
        "XmppAddr: bücher.example; CN: Example Products, Inc.");
  CHECK(describe(cn({"x"})) == "CN: x");
  CHECK(describe(xmpp_addr({"a", "b"})) == "XmppAddr: a, b");
  // a name cannot start a new log line or pass raw bytes through
  CHECK(describe(dns({"a\nb", "\xc3\xa9.example"})) == "DNS names: a\\x0ab, \\xc3\\xa9.example");
  CHECK(describe(cn({"a\x1b[31m"})) == "CN: a\\x1b[31m");
  CHECK(describe(cn({"a\\b"})) == "CN: a\\x5cb");
}

// =======================================================================================
// With real certificates

TEST_CASE("identities_of reads dNSName, SRVName, XmppAddr and CN from a certificate") {
  Ca ca("Herald Test CA");
  Pkey key = make_key();
  CertSpec spec;
  spec.cns = {"Example Products, Inc.", "example.org"};
  spec.sans = {
      dns_san("example.org"),
      dns_san("*.example.org"),
      srv_san("_xmpp-server.example.org"),
      srv_san("_xmpp-client.example.org"),
      xmpp_san("example.org"),
      xmpp_san("bücher.example"),
      // ignored: unknown otherName, right OIDs with the wrong string types, a NUL trick
      San{San::other, "example.org", "1.2.3.4.5", V_ASN1_UTF8STRING},
      San{San::other, "wrong-type.example", "1.3.6.1.5.5.7.8.5", V_ASN1_IA5STRING},
      San{San::other, "_xmpp-server.wrong-type.example", "1.3.6.1.5.5.7.8.7", V_ASN1_UTF8STRING},
      dns_san(std::string("example.org\0.evil.example", 25)),
      xmpp_san(std::string("evil.example\0", 13)),
  };
  Cert cert = ca.issue(spec, key.get());
  const PeerIdentities ids = identities_of(cert.get());
  CHECK(ids.dns_ids == std::vector<std::string>{"example.org", "*.example.org"});
  CHECK(ids.srv_ids == std::vector<std::string>{"_xmpp-server.example.org", "_xmpp-client.example.org"});
  CHECK(ids.xmpp_addrs == std::vector<std::string>{"example.org", "bücher.example"});
  CHECK(ids.common_names == std::vector<std::string>{"Example Products, Inc.", "example.org"});
  CHECK(matches_domain(ids, "example.org"));
  CHECK(matches_domain(ids, "muc.example.org"));
  CHECK(matches_domain(ids, "bücher.example"));
  CHECK_FALSE(matches_domain(ids, "evil.example"));
  CHECK_FALSE(matches_domain(ids, "wrong-type.example"));
  CHECK(describe(ids) ==
        "DNS names: example.org, *.example.org; "
        "SRV names: _xmpp-server.example.org, _xmpp-client.example.org; "
        "XmppAddr: example.org, bücher.example; CN: Example Products, Inc., example.org");
}

TEST_CASE("identities_of: a certificate without subjectAltName has only its CN") {
  Pkey key = make_key();
  CertSpec spec;
  spec.cns = {"example.org"};
  Cert cert = make_cert(spec, key.get(), nullptr, nullptr);
  const PeerIdentities ids = identities_of(cert.get());
  CHECK(ids.dns_ids.empty());
  CHECK(ids.srv_ids.empty());
  CHECK(ids.xmpp_addrs.empty());
  CHECK(ids.common_names == std::vector<std::string>{"example.org"});
  CHECK_FALSE(ids.has_san_identity());
  CHECK_FALSE(matches_domain(ids, "example.org"));
  CHECK(matches_domain(ids, "example.org", Service::xmpp_server, true));
  CHECK(identities_of(nullptr).common_names.empty());
}

TEST_CASE("check_chain against a CA file") {
  TempDir dir;
  Ca ca("Herald Test CA");
  Ca other_ca("Some Other CA", 200);
  const std::string ca_file = write_pem(dir.path / "ca.pem", {ca.cert.get()});
  Pkey key = make_key();
  CertSpec spec;
  spec.cns = {"example.org"};
  spec.sans = {dns_san("example.org"), srv_san("_xmpp-server.example.org"), xmpp_san("example.org")};
  const auto now = std::chrono::system_clock::now();

  SUBCASE("valid chain, matching name") {
    Cert leaf = ca.issue(spec, key.get());
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK(c.chain_ok);
    CHECK(c.chain_error.empty());
    CHECK(c.name_ok);
    CHECK(c.ok());
    CHECK(c.ids.dns_ids == std::vector<std::string>{"example.org"});
    REQUIRE(c.not_after.has_value());
    CHECK(distance(*c.not_after, now + std::chrono::seconds(spec.not_after)) < std::chrono::seconds(120));
  }
  SUBCASE("valid chain, name mismatch") {
    Cert leaf = ca.issue(spec, key.get());
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.net");
    CHECK(c.chain_ok);
    CHECK_FALSE(c.name_ok);
    CHECK_FALSE(c.ok());
    CHECK(describe(c.ids) ==
          "DNS names: example.org; SRV names: _xmpp-server.example.org; XmppAddr: example.org; CN: example.org");
  }
  SUBCASE("signed by a CA the file does not hold") {
    Cert leaf = other_ca.issue(spec, key.get());
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK(c.chain_error.find("unable to get local issuer certificate") != std::string::npos);
    CHECK(c.chain_error.find("depth 0") != std::string::npos);
    CHECK(c.name_ok);
    CHECK_FALSE(c.ok());
  }
  SUBCASE("expired") {
    spec.not_before = -10L * 24 * 3600;
    spec.not_after = -24L * 3600;
    Cert leaf = ca.issue(spec, key.get());
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK(c.chain_error.find("certificate has expired") != std::string::npos);
    CHECK(c.name_ok);
    REQUIRE(c.not_after.has_value());
    CHECK(*c.not_after < now);
    CHECK(distance(*c.not_after, now - std::chrono::hours(24)) < std::chrono::seconds(120));
  }
  SUBCASE("not yet valid") {
    spec.not_before = 24L * 3600;
    Cert leaf = ca.issue(spec, key.get());
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK(c.chain_error.find("not yet valid") != std::string::npos);
  }
  SUBCASE("self-signed leaf") {
    Cert leaf = make_cert(spec, key.get(), nullptr, nullptr);
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK_FALSE(c.chain_error.empty());
  }
  SUBCASE("through an intermediate, which must be supplied") {
    Pkey inter_key = make_key();
    CertSpec inter_spec;
    inter_spec.cns = {"Herald Intermediate"};
    inter_spec.ca = true;
    inter_spec.serial = 7;
    Cert inter = ca.issue(inter_spec, inter_key.get());
    spec.serial = 8;
    Cert leaf = make_cert(spec, key.get(), inter.get(), inter_key.get());
    std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
    REQUIRE(sk_X509_push(chain.get(), inter.get()) > 0);
    const CertCheck with = check_chain(leaf.get(), chain.get(), ca_file, "example.org");
    CHECK(with.chain_ok);
    CHECK(with.ok());
    const CertCheck without = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK_FALSE(without.chain_ok);
    CHECK(without.chain_error.find("unable to get local issuer certificate") != std::string::npos);
  }
  SUBCASE("a certificate only for TLS clients is not a server certificate") {
    spec.eku = "clientAuth";
    Cert leaf = ca.issue(spec, key.get());
    const CertCheck c = check_chain(leaf.get(), nullptr, ca_file, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK(c.chain_error.find("unsuitable certificate purpose") != std::string::npos);
  }
  SUBCASE("a CA file that cannot be read") {
    Cert leaf = ca.issue(spec, key.get());
    const std::string missing = (dir.path / "missing.pem").string();
    const CertCheck c = check_chain(leaf.get(), nullptr, missing, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK(c.chain_error.find("cannot load CA file " + missing) != std::string::npos);
    CHECK(c.name_ok);  // the names are still reported
  }
  SUBCASE("no certificate") {
    const CertCheck c = check_chain(nullptr, nullptr, ca_file, "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK_FALSE(c.name_ok);
    CHECK(c.chain_error == "no certificate");
  }
}

TEST_CASE("check_chain against a store loaded once gives the same answers") {
  TempDir dir;
  Ca ca("Herald Test CA");
  Ca other_ca("Some Other CA", 200);
  const std::string ca_file = write_pem(dir.path / "ca.pem", {ca.cert.get()});
  std::string error;
  CaStore owned = load_ca_store(ca_file, error);
  REQUIRE(owned != nullptr);
  X509_STORE* store = owned.get();
  CHECK(error.empty());
  Pkey key = make_key();
  CertSpec spec;
  spec.cns = {"example.org"};
  spec.sans = {dns_san("example.org")};
  Cert good = ca.issue(spec, key.get());
  Cert rogue = other_ca.issue(spec, key.get());
  for (int i = 0; i < 3; ++i) {  // the store is reused, not consumed
    const CertCheck a = check_chain(good.get(), nullptr, store, "example.org");
    CHECK(a.ok());
    const CertCheck b = check_chain(rogue.get(), nullptr, store, "example.org");
    CHECK_FALSE(b.chain_ok);
    CHECK(b.chain_error == check_chain(rogue.get(), nullptr, ca_file, "example.org").chain_error);
  }
  CHECK_FALSE(check_chain(good.get(), nullptr, static_cast<X509_STORE*>(nullptr), "example.org").chain_ok);
  CHECK(load_ca_store((dir.path / "missing.pem").string(), error) == nullptr);
  CHECK(error.find("missing.pem") != std::string::npos);
}

TEST_CASE("check_peer on a TLS connection") {
  Ca ca("Herald Test CA");
  Pkey key = make_key();
  CertSpec spec;
  spec.cns = {"Example Products, Inc."};
  spec.sans = {dns_san("*.example.org"), srv_san("_xmpp-server.example.org")};
  Cert leaf = ca.issue(spec, key.get());

  SUBCASE("trusted, matching") {
    Handshake hs(leaf.get(), key.get(), ca.cert.get());
    const CertCheck c = check_peer(hs.client.get(), "example.org");
    CHECK(c.chain_ok);
    CHECK(c.name_ok);
    CHECK(c.ok());
    CHECK(c.not_after.has_value());
    CHECK(check_peer(hs.client.get(), "muc.example.org").name_ok);
    CHECK_FALSE(check_peer(hs.client.get(), "example.net").name_ok);
    CHECK_FALSE(check_peer(hs.client.get(), "a.b.example.org").name_ok);
  }
  SUBCASE("untrusted: the names are still read, the chain is not ok") {
    Handshake hs(leaf.get(), key.get(), nullptr);
    const CertCheck c = check_peer(hs.client.get(), "example.org");
    CHECK_FALSE(c.chain_ok);
    CHECK(c.chain_error.find("unable to get local issuer certificate") != std::string::npos);
    CHECK(c.name_ok);
    CHECK(c.ids.srv_ids == std::vector<std::string>{"_xmpp-server.example.org"});
  }
  SUBCASE("no certificate from the peer") {
    Handshake hs(leaf.get(), key.get(), ca.cert.get());
    const CertCheck c = check_peer(hs.server.get(), "example.org");  // the client sent none
    CHECK_FALSE(c.chain_ok);
    CHECK_FALSE(c.name_ok);
    CHECK(c.chain_error == "no certificate presented");
  }
  CHECK(check_peer(nullptr, "example.org").chain_error == "no TLS session");
}

// =======================================================================================
// Dialback keys

TEST_CASE("dialback key: the XEP-0220 examples (keys generated per XEP-0185)") {
  // XEP-0220 §2.1.1, Example 1: capulet.example -> montague.example, stream id D60000229F.
  CHECK(dialback_key("s3cr3tf0rd14lb4ck", "montague.example", "capulet.example", "D60000229F") ==
        "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3");
  // XEP-0220 §2.2.2, Example 13: montague.example -> capulet.example, stream id 417GAF25.
  CHECK(dialback_key("d14lb4ck43v3r", "capulet.example", "montague.example", "417GAF25") ==
        "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d");
}

TEST_CASE("dialback key: every input counts") {
  const std::string k = dialback_key("secret", "a.example", "b.example", "id1");
  CHECK(k.size() == 64);
  CHECK(k.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(k == dialback_key("secret", "a.example", "b.example", "id1"));
  CHECK(k != dialback_key("secret", "a.example", "b.example", "id2"));
  CHECK(k != dialback_key("secret", "b.example", "a.example", "id1"));
  CHECK(k != dialback_key("secret", "a.example", "c.example", "id1"));
  CHECK(k != dialback_key("Secret", "a.example", "b.example", "id1"));
  // the separator is part of the construction: moving it changes the key
  CHECK(dialback_key("s", "a.b", "c", "d") != dialback_key("s", "a", "b c", "d"));
}

TEST_CASE("dialback key validation") {
  const std::string secret = "s3cr3tf0rd14lb4ck";
  const std::string key = "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3";
  CHECK(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F", key));
  // as it arrives in <db:result/>, with whitespace around the character data
  CHECK(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F",
                           "\n        " + key + "\n      "));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "417GAF25", key));
  CHECK_FALSE(dialback_key_valid(secret, "capulet.example", "montague.example", "D60000229F", key));
  CHECK_FALSE(dialback_key_valid("d14lb4ck43v3r", "montague.example", "capulet.example", "D60000229F", key));
  std::string flipped = key;
  flipped.back() = '4';
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F", flipped));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F",
                                 key.substr(0, 63)));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F", key + "0"));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F", ""));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F", "   "));
  std::string upper = key;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F", upper));
  CHECK_FALSE(dialback_key_valid(secret, "montague.example", "capulet.example", "D60000229F",
                                 "k" + key.substr(1)));
}

TEST_CASE("dialback secrets come from the CSPRNG: 64 hex characters, never repeated") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string s = make_dialback_secret();
    CHECK(s.size() == 64);
    CHECK(s.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(s);
  }
  CHECK(seen.size() == 200);
  // and a secret works as one
  const std::string secret = make_dialback_secret();
  const std::string key = dialback_key(secret, "a.example", "b.example", "abc");
  CHECK(dialback_key_valid(secret, "a.example", "b.example", "abc", key));
  CHECK_FALSE(dialback_key_valid(make_dialback_secret(), "a.example", "b.example", "abc", key));
}
