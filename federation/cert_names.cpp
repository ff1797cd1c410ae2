#include "federation/cert_names.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <unicode/uidna.h>

#include <cstdint>
#include <ctime>
#include <memory>

#include "server/xmpp/jid.hpp"

namespace herald::federation {
namespace {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::vector<std::string_view> split_labels(std::string_view s) {
  std::vector<std::string_view> labels;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      labels.push_back(s.substr(start));
      return labels;
    }
    labels.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

bool is_ldh_label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  for (char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

// UTS #46 ToASCII with the same options the JID code uses for domainparts.
std::optional<std::string> to_ascii(std::string_view in) {
  static const UIDNA* idna = [] {
    UErrorCode ec = U_ZERO_ERROR;
    UIDNA* p = uidna_openUTS46(UIDNA_USE_STD3_RULES | UIDNA_CHECK_BIDI | UIDNA_CHECK_CONTEXTJ |
                                   UIDNA_CHECK_CONTEXTO | UIDNA_NONTRANSITIONAL_TO_ASCII,
                               &ec);
    return U_FAILURE(ec) ? nullptr : p;
  }();
  if (idna == nullptr || in.size() > 1024) return std::nullopt;
  std::string out(4 * in.size() + 64, '\0');
  UIDNAInfo info = UIDNA_INFO_INITIALIZER;
  UErrorCode ec = U_ZERO_ERROR;
  const int32_t n = uidna_nameToASCII_UTF8(idna, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                           static_cast<int32_t>(out.size()), &info, &ec);
  if (U_FAILURE(ec) || info.errors != 0 || n <= 0 || static_cast<std::size_t>(n) > out.size()) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The reference identifier's DNS domain name: lowercase A-labels, each a valid LDH label.
// nullopt for anything that is not a DNS name (IP literals included: a wildcard must never
// stand for an octet of an address).
std::optional<std::vector<std::string>> reference_labels(std::string_view domain) {
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty()) return std::nullopt;
  std::string ascii;
  if (is_ascii(domain)) {
    ascii = lower(domain);
  } else {
    auto converted = to_ascii(domain);
    if (!converted) return std::nullopt;
    ascii = lower(*converted);
  }
  std::vector<std::string> labels;
  for (std::string_view label : split_labels(ascii)) {
    if (!is_ldh_label(label)) return std::nullopt;
    labels.emplace_back(label);
  }
  const std::string& tld = labels.back();
  if (tld.find_first_not_of("0123456789") == std::string::npos) return std::nullopt;
  return labels;
}

std::string join(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) {
    if (!out.empty()) out += '.';
    out += l;
  }
  return out;
}

// RFC 9525 §6.3 for one presented DNS-ID (or legacy CN). Invalid presented identifiers,
// including every wildcard form other than a complete left-most "*" label followed by at
// least two labels, match nothing.
bool dns_id_matches(std::string_view presented, const std::vector<std::string>& ref) {
  if (!presented.empty() && presented.back() == '.') presented.remove_suffix(1);
  if (presented.empty() || !is_ascii(presented)) return false;
  const std::string p = lower(presented);
  const auto labels = split_labels(p);
  const bool wildcard = labels.front() == "*";
  for (std::size_t i = wildcard ? 1 : 0; i < labels.size(); ++i) {
    if (!is_ldh_label(labels[i])) return false;  // also rejects '*' anywhere else
  }
  if (labels.size() != ref.size()) return false;
  if (wildcard && labels.size() < 3) return false;
  for (std::size_t i = wildcard ? 1 : 0; i < labels.size(); ++i) {
    if (labels[i] != ref[i]) return false;
  }
  return true;
}

bool srv_id_matches(std::string_view presented, std::string_view service,
                    const std::vector<std::string>& ref) {
  if (!presented.empty() && presented.back() == '.') presented.remove_suffix(1);
  if (!is_ascii(presented)) return false;
  // The service label is compared case-insensitively too (RFC 9525 §6.5).
  return lower(presented) == std::string(service) + "." + join(ref);
}

void append_escaped(std::string& out, std::string_view s, bool allow_utf8) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || (u >= 0x80 && !allow_utf8) || c == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
}

void append_kind(std::string& out, std::string_view title, const std::vector<std::string>& names,
                 bool allow_utf8) {
  if (names.empty()) return;
  if (!out.empty()) out += "; ";
  out += title;
  out += ": ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i != 0) out += ", ";
    append_escaped(out, names[i], allow_utf8);
  }
}

// The bytes of an ASN.1 string, unless it holds a NUL byte (the classic
// "good.example\0.evil.example" trick): such a value is not a name.
std::optional<std::string> string_of(const ASN1_STRING* s) {
  if (s == nullptr) return std::nullopt;
  const int n = ASN1_STRING_length(s);
  if (n < 0) return std::nullopt;
  const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(s));
  std::string out(data, static_cast<std::size_t>(n));
  if (out.find('\0') != std::string::npos) return std::nullopt;
  return out;
}

std::optional<std::chrono::system_clock::time_point> to_time_point(const ASN1_TIME* t) {
  if (t == nullptr) return std::nullopt;
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  const std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(secs);
}

std::string openssl_error() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string("unknown error") : out;
}

void fill_leaf(CertCheck& check, X509* leaf, std::string_view domain) {
  check.ids = identities_of(leaf);
  check.name_ok = matches_domain(check.ids, domain);
  check.not_after = to_time_point(X509_get0_notAfter(leaf));
}

}  // namespace

PeerIdentities identities_of(X509* cert) {
  PeerIdentities ids;
  if (cert == nullptr) return ids;
  // Returns null when the extension is missing, unparsable or present more than once.
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      if (gn == nullptr) continue;
      if (gn->type == GEN_DNS) {
        if (auto s = string_of(gn->d.dNSName)) ids.dns_ids.push_back(std::move(*s));
      } else if (gn->type == GEN_OTHERNAME && gn->d.otherName != nullptr) {
        const OTHERNAME* on = gn->d.otherName;
        const ASN1_TYPE* value = on->value;
        if (value == nullptr) continue;
        const int nid = OBJ_obj2nid(on->type_id);
        if (nid == NID_SRVName && value->type == V_ASN1_IA5STRING) {
          if (auto s = string_of(value->value.ia5string)) ids.srv_ids.push_back(std::move(*s));
        } else if (nid == NID_XmppAddr && value->type == V_ASN1_UTF8STRING) {
          auto s = string_of(value->value.utf8string);
          if (s && xmpp::is_valid_utf8(*s)) ids.xmpp_addrs.push_back(std::move(*s));
        }
      }
    }
  }
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); idx >= 0;
       idx = X509_NAME_get_index_by_NID(subject, NID_commonName, idx)) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0 || utf8 == nullptr) continue;
    std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    if (cn.find('\0') == std::string::npos) ids.common_names.push_back(std::move(cn));
  }
  return ids;
}

bool matches_domain(const PeerIdentities& ids, std::string_view domain, Service service,
                    bool cn_fallback) {
  if (const auto ref = reference_labels(domain)) {
    for (const auto& dns : ids.dns_ids) {
      if (dns_id_matches(dns, *ref)) return true;
    }
    for (const auto& srv : ids.srv_ids) {
      if (srv_id_matches(srv, "_xmpp-server", *ref)) return true;
      if (service == Service::xmpps_server && srv_id_matches(srv, "_xmpps-server", *ref)) return true;
    }
    if (cn_fallback && !ids.has_san_identity()) {
      for (const auto& cn : ids.common_names) {
        if (dns_id_matches(cn, *ref)) return true;
      }
    }
  }
  if (!ids.xmpp_addrs.empty()) {
    if (const auto want = xmpp::prep_domain(domain)) {
      for (const auto& addr : ids.xmpp_addrs) {
        const auto have = xmpp::prep_domain(addr);
        if (have && *have == *want) return true;
      }
    }
  }
  return false;
}

std::string describe(const PeerIdentities& ids) {
  std::string out;
  append_kind(out, "DNS names", ids.dns_ids, false);
  append_kind(out, "SRV names", ids.srv_ids, false);
  append_kind(out, "XmppAddr", ids.xmpp_addrs, true);
  append_kind(out, "CN", ids.common_names, true);
  return out.empty() ? std::string("no names") : out;
}

CertCheck check_peer(SSL* ssl, std::string_view domain) {
  CertCheck check;
  if (ssl == nullptr) {
    check.chain_error = "no TLS session";
    return check;
  }
  std::unique_ptr<X509, X509Free> cert(SSL_get1_peer_certificate(ssl));
  if (!cert) {
    check.chain_error = "no certificate presented";
    return check;
  }
  fill_leaf(check, cert.get(), domain);
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) {
    check.chain_ok = true;
  } else {
    check.chain_error = X509_verify_cert_error_string(result);
  }
  return check;
}

CertCheck check_chain(X509* leaf, STACK_OF(X509) * chain, const std::string& ca_file,
                      std::string_view domain) {
  CertCheck check;
  if (leaf == nullptr) {
    check.chain_error = "no certificate";
    return check;
  }
  fill_leaf(check, leaf, domain);

  auto store = load_ca_store(ca_file, check.chain_error);
  if (store) verify_with(check, leaf, chain, store.get());
  return check;
}

CertCheck check_chain(X509* leaf, STACK_OF(X509) * chain, X509_STORE* store, std::string_view domain) {
  CertCheck check;
  if (leaf == nullptr) {
    check.chain_error = "no certificate";
    return check;
  }
  fill_leaf(check, leaf, domain);
  if (store == nullptr) {
    check.chain_error = "no CA certificates loaded";
    return check;
  }
  ERR_clear_error();
  verify_with(check, leaf, chain, store);
  return check;
}

CaStore load_ca_store(const std::string& ca_file, std::string& error) {
  ERR_clear_error();
  CaStore store(X509_STORE_new());
  if (!store) {
    error = "cannot create a certificate store: " + openssl_error();
    return nullptr;
  }
  if (X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
    error = "cannot load CA file " + ca_file + ": " + openssl_error();
    return nullptr;
  }
  return store;
}

void verify_with(CertCheck& check, X509* leaf, STACK_OF(X509) * chain, X509_STORE* store) {
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store, leaf, chain) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
    check.chain_error = "cannot set up verification: " + openssl_error();
    return;
  }
  if (X509_verify_cert(ctx.get()) == 1) {
    check.chain_ok = true;
  } else {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    check.chain_error = std::string(X509_verify_cert_error_string(err)) + " (certificate at depth " +
                        std::to_string(depth) + (depth == 0 ? ", the server's own)" : ")");
  }
  ERR_clear_error();
}

}  // namespace herald::federation
