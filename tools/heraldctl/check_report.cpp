#include "tools/heraldctl/check_report.hpp"

#include <fmt/core.h>

#include <ctime>

#include "federation/dns/srv.hpp"

namespace herald::heraldctl {

namespace dns = federation::dns;
using std::chrono::hours;

// ------------------------------------------------------------------ dates

std::string format_utc(SystemClock::time_point t) {
  const std::time_t secs = SystemClock::to_time_t(t);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "(unrepresentable date)";
  char buf[64];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) return "(unrepresentable date)";
  return buf;
}

long days_until(SystemClock::time_point t, SystemClock::time_point now) {
  return static_cast<long>(std::chrono::floor<std::chrono::days>(t - now).count());
}

Expiry expiry_of(SystemClock::time_point not_after, SystemClock::time_point now, long warn_days) {
  if (not_after <= now) return Expiry::expired;
  if (days_until(not_after, now) < warn_days) return Expiry::soon;
  return Expiry::fine;
}

namespace {

std::string days_word(long n) { return fmt::format("{} day{}", n, n == 1 ? "" : "s"); }

std::string_view mode_of(const dns::Target& target) { return target.direct_tls ? "direct TLS" : "STARTTLS"; }

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// What a certificate without a matching name needs, in one clause.
std::string name_fix(std::string_view domain) {
  return fmt::format("get a certificate with the DNS name {} (an SRV-ID _xmpp-server.{} or an XmppAddr {} also do)",
                     domain, domain, domain);
}

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::string describe_expiry(SystemClock::time_point not_after, SystemClock::time_point now) {
  const std::string date = format_utc(not_after);
  if (not_after <= now) {
    const long ago = -days_until(not_after, now) - 1;  // whole days since
    if (ago < 1) return date + " (EXPIRED less than a day ago)";
    return date + " (EXPIRED " + days_word(ago) + " ago)";
  }
  const long left = days_until(not_after, now);
  if (left < 1) return date + " (less than a day left)";
  return date + " (" + days_word(left) + " left)";
}

// ------------------------------------------------------------------ check dns

std::string describe_srv_failure(const dns::SrvResult& result) {
  std::string_view kind;
  switch (result.status) {
    case dns::Status::ok: return "no records";
    case dns::Status::not_found: kind = "none"; break;
    case dns::Status::timeout: kind = "timeout"; break;
    case dns::Status::error: kind = "error"; break;
  }
  if (result.error.empty()) return std::string(kind);
  return fmt::format("{}: {}", kind, result.error);
}

std::string describe_srv_record(const dns::SrvRecord& record) {
  std::string target = record.target;
  if (dns::is_root_target(record.target)) target = ". (no service)";
  return fmt::format("priority {}  weight {}  port {}  target {}", record.priority, record.weight, record.port,
                     target);
}

std::string describe_target(const dns::Target& target) {
  return fmt::format("{}:{} {}", target.host, target.port, mode_of(target));
}

std::string describe_endpoint(std::string_view host, std::string_view address, unsigned port) {
  return fmt::format("{} [{}]:{}", host, address, port);
}

std::string certificate_problem(const federation::CertCheck& check, std::string_view domain, std::string_view where,
                                std::string_view ca_file, SystemClock::time_point now) {
  if (check.ok()) return {};
  if (!check.chain_ok) {
    if (check.not_after && *check.not_after <= now) {
      return fmt::format("the certificate of {} expired on {}: renew it", where, format_utc(*check.not_after));
    }
    if (check.chain_error == "no certificate presented") {
      return fmt::format("{} presented no certificate ({}): configure a certificate for {} on that server", where,
                         check.chain_error, domain);
    }
    if (starts_with(check.chain_error, "cannot load CA file")) {
      return fmt::format("cannot check the certificate of {}: {}: set [federation] ca_file to a readable PEM file "
                         "of CA certificates",
                         where, check.chain_error);
    }
    std::string text = fmt::format(
        "the certificate of {} is not trusted: {}: it must chain to a CA in [federation] ca_file ({}); the "
        "server must send its intermediate certificates too",
        where, check.chain_error, ca_file);
    if (!check.name_ok) text += fmt::format("; it does not name {} either (names: {})", domain, describe(check.ids));
    return text;
  }
  return fmt::format("the certificate of {} does not name {} (names: {}): {}", where, domain, describe(check.ids),
                     name_fix(domain));
}

Verdict dns_verdict(const DnsReport& report, SystemClock::time_point now) {
  const std::string& domain = report.domain;
  Verdict verdict;

  // Success: the first address that came up with a good certificate.
  std::size_t failed = 0;
  const Attempt* good = nullptr;
  const TargetReport* good_target = nullptr;
  for (const auto& target : report.targets) {
    for (const auto& attempt : target.attempts) {
      if (attempt.ok() && good == nullptr) {
        good = &attempt;
        good_target = &target;
      } else if (!attempt.ok()) {
        ++failed;
      }
    }
  }
  if (good != nullptr) {
    verdict.ok = true;
    verdict.summary = fmt::format("OK: {} accepts server-to-server connections: {} ({}) presents a valid certificate",
                                  domain,
                                  describe_endpoint(good_target->target.host, good->address, good_target->target.port),
                                  mode_of(good_target->target));
    if (failed > 0) verdict.summary += fmt::format("; {} other address{} failed (see above)", failed, failed == 1 ? "" : "es");
    if (good->cert->not_after && expiry_of(*good->cert->not_after, now) == Expiry::soon) {
      verdict.summary += fmt::format("; warning: the certificate expires in {}, renew it soon",
                                     days_word(days_until(*good->cert->not_after, now)));
    }
    return verdict;
  }

  if (report.plan.targets.empty()) {
    verdict.summary = fmt::format(
        "FAILED: {} says it offers no server-to-server service (SRV target \".\"): if it should federate, replace the "
        "\".\" record with _xmpp-server._tcp.{} SRV records naming its server",
        domain, domain);
    return verdict;
  }

  // Nothing to connect to: a DNS problem.
  bool any_address = false;
  for (const auto& target : report.targets) any_address = any_address || !target.addresses.empty();
  if (!any_address) {
    const auto srv_failed = [](const dns::SrvResult& r) {
      return r.status == dns::Status::error || r.status == dns::Status::timeout;
    };
    const bool lookup_failed = srv_failed(report.xmpps) || srv_failed(report.xmpp);
    if (report.plan.fallback) {
      const TargetReport* only = report.targets.empty() ? nullptr : &report.targets.front();
      const bool no_a = only != nullptr && only->address_status == dns::Status::not_found;
      if (lookup_failed) {
        const dns::SrvResult& bad = srv_failed(report.xmpp) ? report.xmpp : report.xmpps;
        verdict.summary = fmt::format(
            "FAILED: the DNS lookups for {} failed ({}): check [federation] dns_servers (and dns_timeout_ms) and "
            "that those servers answer for {}",
            domain, describe_srv_failure(bad), domain);
      } else if (no_a) {
        verdict.summary = fmt::format(
            "FAILED: no SRV records and no A/AAAA record for {}: add _xmpp-server._tcp.{} SRV records (or an "
            "A/AAAA record for {})",
            domain, domain, domain);
      } else {
        std::string why = only ? only->address_error : std::string("not looked up");
        verdict.summary = fmt::format(
            "FAILED: no SRV records for {}, and its A/AAAA lookup failed ({}): check [federation] dns_servers", domain,
            why);
      }
      return verdict;
    }
    std::vector<std::string> hosts;
    bool all_missing = true;
    std::string first_error;
    for (const auto& target : report.targets) {
      hosts.push_back(target.target.host);
      if (target.address_status != dns::Status::not_found) {
        all_missing = false;
        if (first_error.empty()) first_error = target.address_error;
      }
    }
    if (all_missing) {
      verdict.summary = fmt::format(
          "FAILED: the SRV target{} of {} ({}) {} no A/AAAA record: add address records for {}, or correct the SRV "
          "records",
          hosts.size() == 1 ? "" : "s", domain, list(hosts), hosts.size() == 1 ? "has" : "have",
          hosts.size() == 1 ? "it" : "them");
    } else {
      verdict.summary = fmt::format("FAILED: cannot resolve the SRV target{} of {} ({}): {}: check [federation] "
                                    "dns_servers",
                                    hosts.size() == 1 ? "" : "s", domain, list(hosts), first_error);
    }
    return verdict;
  }

  // Something was tried: report the attempt that got furthest (the first one on ties).
  const Attempt* best = nullptr;
  const TargetReport* best_target = nullptr;
  std::size_t tried = 0;
  for (const auto& target : report.targets) {
    for (const auto& attempt : target.attempts) {
      ++tried;
      if (best == nullptr || attempt.reached > best->reached) {
        best = &attempt;
        best_target = &target;
      }
    }
  }
  if (best == nullptr) {
    verdict.summary = fmt::format("FAILED: no address of {} was tried", domain);
    return verdict;
  }
  const auto& target = best_target->target;
  const std::string where = describe_endpoint(target.host, best->address, target.port);
  switch (best->reached) {
    case Stage::connect:
      if (tried == 1) {
        verdict.summary = fmt::format(
            "FAILED: cannot connect to {}: {}: check that the XMPP server for {} runs and listens on port {} there, "
            "and that no firewall blocks it",
            where, best->error, domain, target.port);
      } else {
        verdict.summary = fmt::format(
            "FAILED: none of the {} addresses of {} accepted a connection (e.g. {}: {}): check that its XMPP server "
            "runs and listens on the ports of its SRV records, and that no firewall blocks them",
            tried, domain, where, best->error);
      }
      break;
    case Stage::stream:
      if (best->stream_error == "host-unknown") {
        verdict.summary = fmt::format(
            "FAILED: the server at {} does not serve {} (it answered <host-unknown/>): point the DNS records of {} "
            "at a server that hosts it, or add {} to that server",
            where, domain, domain, domain);
      } else {
        verdict.summary = fmt::format(
            "FAILED: {} accepted the connection but the XMPP stream failed: {}: is an XMPP server-to-server "
            "listener for {} on port {} ({})?",
            where, best->error, domain, target.port, mode_of(target));
      }
      break;
    case Stage::starttls:
      verdict.summary = fmt::format(
          "FAILED: STARTTLS with {} failed: {}: the server must offer STARTTLS on its server-to-server port "
          "(and have a certificate for {})",
          where, best->error, domain);
      break;
    case Stage::tls:
      verdict.summary = fmt::format(
          "FAILED: the TLS handshake with {} ({}) failed: {}: check the server's TLS set-up and its certificate "
          "for {}",
          where, mode_of(target), best->error, domain);
      break;
    case Stage::certificate: {
      std::string problem;
      if (best->cert) problem = certificate_problem(*best->cert, domain, where, report.ca_file, now);
      if (problem.empty()) problem = fmt::format("the certificate of {} could not be checked", where);
      verdict.summary = "FAILED: " + problem;
      break;
    }
  }
  return verdict;
}

// ------------------------------------------------------------------ check certs

std::vector<Finding> host_findings(const HostCertReport& r, SystemClock::time_point now) {
  std::vector<Finding> out;
  const auto problem = [&](std::string text) { out.push_back({Finding::Level::problem, std::move(text)}); };
  const auto warning = [&](std::string text) { out.push_back({Finding::Level::warning, std::move(text)}); };

  if (!r.certificate_error.empty()) {
    problem(fmt::format("cannot read a certificate from {}: {}: give a PEM file with the server's certificate first, "
                        "then its intermediate certificates",
                        r.certificate_file, r.certificate_error));
    return out;
  }
  if (!r.key_error.empty()) {
    problem(fmt::format("cannot read the private key from {}: {}: give the certificate's private key as an "
                        "unencrypted PEM file",
                        r.key_file, r.key_error));
  } else if (!r.key_matches) {
    problem(fmt::format("the key in {} does not belong to the certificate in {}: set key to the certificate's own "
                        "key, or certificate to the one issued for this key",
                        r.key_file, r.certificate_file));
  }
  if (!r.check.name_ok) {
    problem(fmt::format("the certificate does not name {} (names: {}): {}", r.domain, describe(r.check.ids),
                        name_fix(r.domain)));
  }
  bool expired = false;
  if (!r.check.not_after) {
    problem("the certificate has no readable expiry date (notAfter): replace it");
  } else {
    switch (expiry_of(*r.check.not_after, now)) {
      case Expiry::expired:
        expired = true;
        problem(fmt::format("the certificate expired on {}: renew it", format_utc(*r.check.not_after)));
        break;
      case Expiry::soon:
        warning(fmt::format("the certificate expires on {}, in {}: renew it soon", format_utc(*r.check.not_after),
                            days_word(days_until(*r.check.not_after, now))));
        break;
      case Expiry::fine: break;
    }
  }
  if (!r.check.chain_ok) {
    // An expired leaf is the one problem already reported above.
    const bool only_expiry = expired && starts_with(r.check.chain_error, "certificate has expired (certificate at depth 0");
    if (starts_with(r.check.chain_error, "cannot load CA file")) {
      problem(fmt::format("cannot check the chain: {}: set [federation] ca_file to a readable PEM file of CA "
                          "certificates",
                          r.check.chain_error));
    } else if (!only_expiry) {
      problem(fmt::format("the certificate does not verify against [federation] ca_file ({}): {}: peers that trust "
                          "the same CAs will refuse it; use a certificate from such a CA and put its intermediate "
                          "certificates after it in {}",
                          r.ca_file, r.check.chain_error, r.certificate_file));
    }
  }
  return out;
}

}  // namespace herald::heraldctl
