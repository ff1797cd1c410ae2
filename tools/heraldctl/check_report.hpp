// `heraldctl check dns` and `heraldctl check certs`: what was found, and what it means for
// an operator. Pure functions only (no I/O, the clock is a parameter), so every verdict
// and wording can be unit-tested (tests/unit/tools/test_check_report.cpp); check_dns.cpp
// and check_certs.cpp gather the facts and print them.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "federation/cert_names.hpp"
#include "federation/dns/answer.hpp"
#include "federation/dns/plan.hpp"

namespace herald::heraldctl {

using SystemClock = std::chrono::system_clock;

// ------------------------------------------------------------------ dates

// "2026-12-20 08:34:06 UTC"
std::string format_utc(SystemClock::time_point t);

// Whole days from `now` until `t`, rounded towards minus infinity: 0 for "later today",
// -1 for "up to a day ago".
long days_until(SystemClock::time_point t, SystemClock::time_point now);

// A certificate this close to its end is reported as a warning.
inline constexpr long expiry_warning_days = 14;

enum class Expiry { fine, soon, expired };
// expired: not_after is not in the future; soon: fewer than warn_days whole days left.
Expiry expiry_of(SystemClock::time_point not_after, SystemClock::time_point now,
                 long warn_days = expiry_warning_days);

// "2026-12-20 08:34:06 UTC (29 days left)", "(less than a day left)",
// "(EXPIRED 3 days ago)", "(EXPIRED less than a day ago)".
std::string describe_expiry(SystemClock::time_point not_after, SystemClock::time_point now);

// ------------------------------------------------------------------ check dns

// One line for an SRV lookup that found no records: "none: no such domain (NXDOMAIN)",
// "timeout: no answer from the DNS servers", "error: ...".
std::string describe_srv_failure(const federation::dns::SrvResult& result);

// "priority 0  weight 5  port 5269  target xmpp.example.org" ("target . (no service)").
std::string describe_srv_record(const federation::dns::SrvRecord& record);

// "xmpp.example.org:5269 STARTTLS", "xmpp.example.org:5270 direct TLS".
std::string describe_target(const federation::dns::Target& target);

// "host [192.0.2.1]:5269", "host [2001:db8::1]:5269".
std::string describe_endpoint(std::string_view host, std::string_view address, unsigned port);

// How far a connection attempt got. The value is the step that failed, or `certificate`
// once the TLS handshake completed (then `cert` says whether the certificate is good).
enum class Stage {
  connect,      // TCP connection
  stream,       // stream header and features (STARTTLS only)
  starttls,     // <starttls/> offered, asked for, <proceed/> received
  tls,          // TLS handshake
  certificate,  // TLS is up; the certificate was checked
};

struct Attempt {
  std::string address;  // "127.0.0.2", "::1"
  Stage reached = Stage::connect;
  std::string error;         // why `reached` failed; empty once TLS is up
  std::string stream_error;  // the condition of a <stream:error/>, e.g. "host-unknown"
  bool timed_out = false;    // [federation] connect_timeout ran out
  std::string tls_version;   // "TLSv1.3" once TLS is up
  std::optional<federation::CertCheck> cert;  // once TLS is up

  bool ok() const { return cert && cert->ok(); }
};

struct TargetReport {
  federation::dns::Target target;
  federation::dns::Status address_status = federation::dns::Status::error;
  std::string address_error;           // the resolver's words when there are no addresses
  std::vector<std::string> addresses;  // A and AAAA, in the order tried
  std::vector<Attempt> attempts;       // one per address
};

struct DnsReport {
  std::string domain;
  federation::dns::SrvResult xmpps;  // _xmpps-server._tcp.DOMAIN (direct TLS)
  federation::dns::SrvResult xmpp;   // _xmpp-server._tcp.DOMAIN (STARTTLS)
  federation::dns::ConnectionPlan plan;
  std::vector<TargetReport> targets;  // as tried, in plan order
  std::string ca_file;                // [federation] ca_file
};

struct Verdict {
  bool ok = false;
  std::string summary;  // one line: "OK: ..." or "FAILED: <what is wrong>: <what to do>"
};

// Why a certificate is not good for `domain`, with what to do; empty when it is.
// `where` names the server ("xmpp.example.org [192.0.2.1]:5269").
std::string certificate_problem(const federation::CertCheck& check, std::string_view domain,
                                std::string_view where, std::string_view ca_file,
                                SystemClock::time_point now);

// ok when at least one address connected and presented a valid certificate for the
// domain. Otherwise the summary names the problem of the attempt that got furthest (or
// the DNS problem if nothing could be tried) and says what to fix.
Verdict dns_verdict(const DnsReport& report, SystemClock::time_point now);

// ------------------------------------------------------------------ check certs

struct HostCertReport {
  std::string domain;
  std::string certificate_file;
  std::string key_file;
  std::string ca_file;          // [federation] ca_file
  std::string certificate_error;  // non-empty: the certificate file gave no certificate
  std::string key_error;          // non-empty: the key file gave no key
  bool key_matches = false;       // the key is the certificate's
  std::size_t intermediates = 0;  // certificates after the first in certificate_file
  federation::CertCheck check;    // check_chain(leaf, intermediates, ca_file, domain)
};

struct Finding {
  enum class Level { warning, problem };
  Level level = Level::problem;
  std::string text;  // what is wrong: what to do
};

// Everything wrong with one [[host]]'s certificate and key, problems and warnings, in
// the order an operator would fix them.
std::vector<Finding> host_findings(const HostCertReport& report, SystemClock::time_point now);

}  // namespace herald::heraldctl
