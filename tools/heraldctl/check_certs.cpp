// heraldctl check certs: the certificate and key of every [[host]], read the way the
// server reads them (a PEM chain: the host's certificate first, then intermediates).
#include <fmt/core.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "federation/cert_names.hpp"
#include "tools/heraldctl/check.hpp"
#include "tools/heraldctl/check_report.hpp"

namespace herald::heraldctl {

namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};

// OpenSSL's queued errors, most recent last, as one line; clears the queue.
std::string openssl_error(std::string_view fallback) {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string text = reason ? reason : fmt::format("error {:#x}", e);
    if (out.find(text) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? std::string(fallback) : out;
}

// Never prompts: an encrypted key is an error, as it is for the server.
int no_passphrase(char*, int, int, void*) { return -1; }

HostCertReport inspect(const config::Host& host, const std::string& ca_file) {
  HostCertReport r;
  r.domain = host.domain;
  r.certificate_file = host.certificate.string();
  r.key_file = host.key.string();
  r.ca_file = ca_file;
  ERR_clear_error();

  std::unique_ptr<X509, X509Free> leaf;
  std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
  {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(r.certificate_file.c_str(), "r"));
    if (!bio) {
      r.certificate_error = "cannot open it: " + openssl_error("unknown error");
      return r;
    }
    leaf.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, no_passphrase, nullptr));
    if (!leaf) {
      r.certificate_error = "no PEM certificate in it (" + openssl_error("unknown error") + ")";
      return r;
    }
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
      sk_X509_push(chain.get(), extra);
    }
    ERR_clear_error();  // the end of the file reads as "no start line"
    r.intermediates = static_cast<std::size_t>(sk_X509_num(chain.get()));
  }

  std::unique_ptr<EVP_PKEY, KeyFree> key;
  {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(r.key_file.c_str(), "r"));
    if (!bio) {
      r.key_error = "cannot open it: " + openssl_error("unknown error");
    } else {
      key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
      if (!key) r.key_error = "no usable PEM private key in it (" + openssl_error("unknown error") + ")";
    }
  }
  if (key) {
    r.key_matches = X509_check_private_key(leaf.get(), key.get()) == 1;
    ERR_clear_error();
  }
  r.check = federation::check_chain(leaf.get(), chain.get(), ca_file, r.domain);
  return r;
}

}  // namespace

int check_certs(const config::Config& cfg) {
  const std::string ca_file = cfg.federation.ca_file.string();
  const auto now = SystemClock::now();
  std::size_t problems = 0;
  std::size_t warnings = 0;
  std::size_t bad_hosts = 0;
  fmt::print("Certificates of the {} host{} in {} (chains checked against [federation] ca_file {})\n",
             cfg.hosts.size(), cfg.hosts.size() == 1 ? "" : "s", cfg.path.string(), ca_file);
  for (const auto& host : cfg.hosts) {
    const HostCertReport r = inspect(host, ca_file);
    fmt::print("\n[[host]] {}\n", r.domain);
    if (r.certificate_error.empty()) {
      fmt::print("  certificate: {} (the host's certificate + {} intermediate{})\n", r.certificate_file,
                 r.intermediates, r.intermediates == 1 ? "" : "s");
      if (!r.key_error.empty()) {
        fmt::print("  key:         {}: NOT readable\n", r.key_file);
      } else {
        fmt::print("  key:         {}: {}\n", r.key_file,
                   r.key_matches ? "matches the certificate" : "does NOT match the certificate");
      }
      fmt::print("  names:       {}\n", describe(r.check.ids));
      fmt::print("  {}: {}\n", r.domain, r.check.name_ok ? "named by the certificate" : "NOT named by the certificate");
      if (r.check.chain_ok) {
        fmt::print("  chain:       valid\n");
      } else {
        fmt::print("  chain:       NOT valid: {}\n", r.check.chain_error);
      }
      if (r.check.not_after) fmt::print("  expires:     {}\n", describe_expiry(*r.check.not_after, now));
    } else {
      fmt::print("  certificate: {}: NOT readable\n", r.certificate_file);
    }
    const auto findings = host_findings(r, now);
    bool bad = false;
    for (const auto& f : findings) {
      if (f.level == Finding::Level::problem) {
        ++problems;
        bad = true;
        fmt::print("  PROBLEM: {}\n", f.text);
      } else {
        ++warnings;
        fmt::print("  warning: {}\n", f.text);
      }
    }
    if (bad) ++bad_hosts;
    if (findings.empty()) fmt::print("  => OK\n");
  }
  fmt::print("\n");
  if (problems == 0) {
    fmt::print("OK: the certificates and keys of all {} host{} are good{}\n", cfg.hosts.size(),
               cfg.hosts.size() == 1 ? "" : "s",
               warnings == 0 ? "" : fmt::format(" ({} warning{} above)", warnings, warnings == 1 ? "" : "s"));
    return 0;
  }
  fmt::print("FAILED: {} problem{} in {} of {} host{}: fix what each PROBLEM line says\n", problems,
             problems == 1 ? "" : "s", bad_hosts, cfg.hosts.size(), cfg.hosts.size() == 1 ? "" : "s");
  return 1;
}

}  // namespace herald::heraldctl
