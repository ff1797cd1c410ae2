// heraldctl check dns / check certs: dates, expiry, and the one-line verdicts an operator
// acts on, for every kind of outcome, without network or files.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "tools/heraldctl/check_report.hpp"

using namespace herald::heraldctl;
using herald::federation::CertCheck;
using herald::federation::PeerIdentities;
namespace dns = herald::federation::dns;
using std::chrono::hours;

namespace {

// 2026-01-10 12:00:00 UTC
const SystemClock::time_point now = SystemClock::from_time_t(1768046400);

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

CertCheck good_cert(const std::string& domain) {
  CertCheck c;
  c.chain_ok = true;
  c.name_ok = true;
  c.ids.dns_ids = {domain};
  c.not_after = now + hours(24 * 60);
  return c;
}

dns::SrvResult not_found(std::string error = "no such domain (NXDOMAIN)") {
  dns::SrvResult r;
  r.status = dns::Status::not_found;
  r.error = std::move(error);
  return r;
}

dns::SrvResult records(std::vector<dns::SrvRecord> recs) {
  dns::SrvResult r;
  r.status = dns::Status::ok;
  r.records = std::move(recs);
  return r;
}

// A report for a.test with one SRV target xmpp.a.test:5269 and one address.
DnsReport one_target(Attempt attempt) {
  DnsReport r;
  r.domain = "a.test";
  r.ca_file = "/etc/ca.pem";
  r.xmpps = not_found();
  r.xmpp = records({{0, 5, 5269, "xmpp.a.test"}});
  r.plan = dns::connection_plan(r.domain, r.xmpps, r.xmpp);
  TargetReport t;
  t.target = r.plan.targets.at(0);
  t.address_status = dns::Status::ok;
  t.addresses = {attempt.address};
  t.attempts = {std::move(attempt)};
  r.targets = {t};
  return r;
}

Attempt attempt_at(Stage stage, std::string error = {}) {
  Attempt a;
  a.address = "127.0.0.2";
  a.reached = stage;
  a.error = std::move(error);
  return a;
}

}  // namespace

TEST_CASE("dates and expiry") {
  CHECK(format_utc(now) == "2026-01-10 12:00:00 UTC");
  CHECK(days_until(now + hours(1), now) == 0);
  CHECK(days_until(now + hours(24), now) == 1);
  CHECK(days_until(now + hours(47), now) == 1);
  CHECK(days_until(now - hours(1), now) == -1);
  CHECK(days_until(now - hours(24), now) == -1);
  CHECK(days_until(now - hours(25), now) == -2);

  CHECK(expiry_of(now + hours(24 * 30), now) == Expiry::fine);
  CHECK(expiry_of(now + hours(24 * 14), now) == Expiry::fine);
  CHECK(expiry_of(now + hours(24 * 14 - 1), now) == Expiry::soon);
  CHECK(expiry_of(now + hours(1), now) == Expiry::soon);
  CHECK(expiry_of(now, now) == Expiry::expired);
  CHECK(expiry_of(now - hours(1), now) == Expiry::expired);

  CHECK(describe_expiry(now + hours(24 * 29 + 3), now) == "2026-02-08 15:00:00 UTC (29 days left)");
  CHECK(describe_expiry(now + hours(24), now) == "2026-01-11 12:00:00 UTC (1 day left)");
  CHECK(describe_expiry(now + hours(5), now) == "2026-01-10 17:00:00 UTC (less than a day left)");
  CHECK(describe_expiry(now - hours(5), now) == "2026-01-10 07:00:00 UTC (EXPIRED less than a day ago)");
  CHECK(describe_expiry(now - hours(24 * 3 + 1), now) == "2026-01-07 11:00:00 UTC (EXPIRED 3 days ago)");
}

TEST_CASE("SRV lines") {
  CHECK(describe_srv_failure(not_found()) == "none: no such domain (NXDOMAIN)");
  dns::SrvResult t;
  t.status = dns::Status::timeout;
  t.error = "no answer from the DNS servers";
  CHECK(describe_srv_failure(t) == "timeout: no answer from the DNS servers");
  t.status = dns::Status::error;
  t.error = "cannot reach the DNS servers (connection refused)";
  CHECK(describe_srv_failure(t) == "error: cannot reach the DNS servers (connection refused)");
  CHECK(describe_srv_record({10, 5, 5269, "xmpp.a.test"}) == "priority 10  weight 5  port 5269  target xmpp.a.test");
  CHECK(describe_srv_record({0, 0, 0, "."}) == "priority 0  weight 0  port 0  target . (no service)");
  CHECK(describe_target({"xmpp.a.test", 5270, true}) == "xmpp.a.test:5270 direct TLS");
  CHECK(describe_target({"a.test", 5269, false}) == "a.test:5269 STARTTLS");
  CHECK(describe_endpoint("h", "::1", 5269) == "h [::1]:5269");
}

TEST_CASE("check dns: a good certificate somewhere is success") {
  Attempt refused = attempt_at(Stage::connect, "Connection refused");
  Attempt good = attempt_at(Stage::certificate);
  good.address = "127.0.0.3";
  good.cert = good_cert("a.test");
  DnsReport r = one_target(refused);
  r.targets[0].addresses.push_back(good.address);
  r.targets[0].attempts.push_back(good);
  const Verdict v = dns_verdict(r, now);
  CHECK(v.ok);
  CHECK(v.summary ==
        "OK: a.test accepts server-to-server connections: xmpp.a.test [127.0.0.3]:5269 (STARTTLS) presents a valid "
        "certificate; 1 other address failed (see above)");

  r.targets[0].attempts[1].cert->not_after = now + hours(24 * 5 + 2);
  const Verdict soon = dns_verdict(r, now);
  CHECK(soon.ok);
  CHECK(contains(soon.summary, "warning: the certificate expires in 5 days, renew it soon"));
}

TEST_CASE("check dns: DNS problems") {
  SUBCASE("no records at all") {
    DnsReport r;
    r.domain = "nothing.test";
    r.xmpps = not_found();
    r.xmpp = not_found();
    r.plan = dns::connection_plan(r.domain, r.xmpps, r.xmpp);
    TargetReport t;
    t.target = r.plan.targets.at(0);
    t.address_status = dns::Status::not_found;
    t.address_error = "no such domain (NXDOMAIN)";
    r.targets = {t};
    const Verdict v = dns_verdict(r, now);
    CHECK_FALSE(v.ok);
    CHECK(v.summary ==
          "FAILED: no SRV records and no A/AAAA record for nothing.test: add _xmpp-server._tcp.nothing.test SRV "
          "records (or an A/AAAA record for nothing.test)");
  }
  SUBCASE("the DNS servers do not answer") {
    DnsReport r;
    r.domain = "a.test";
    r.xmpps.status = dns::Status::timeout;
    r.xmpps.error = "no answer from the DNS servers";
    r.xmpp = r.xmpps;
    r.plan = dns::connection_plan(r.domain, r.xmpps, r.xmpp);
    TargetReport t;
    t.target = r.plan.targets.at(0);
    t.address_status = dns::Status::timeout;
    r.targets = {t};
    const Verdict v = dns_verdict(r, now);
    CHECK_FALSE(v.ok);
    CHECK(contains(v.summary, "FAILED: the DNS lookups for a.test failed (timeout: no answer from the DNS servers)"));
    CHECK(contains(v.summary, "check [federation] dns_servers"));
  }
  SUBCASE("no service") {
    DnsReport r;
    r.domain = "none.test";
    r.xmpps = not_found();
    r.xmpp = records({{0, 0, 0, "."}});
    r.plan = dns::connection_plan(r.domain, r.xmpps, r.xmpp);
    const Verdict v = dns_verdict(r, now);
    CHECK_FALSE(v.ok);
    CHECK(contains(v.summary, "none.test says it offers no server-to-server service (SRV target \".\")"));
  }
  SUBCASE("SRV targets without addresses") {
    DnsReport r = one_target(attempt_at(Stage::connect));
    r.targets[0].addresses.clear();
    r.targets[0].attempts.clear();
    r.targets[0].address_status = dns::Status::not_found;
    const Verdict v = dns_verdict(r, now);
    CHECK_FALSE(v.ok);
    CHECK(v.summary ==
          "FAILED: the SRV target of a.test (xmpp.a.test) has no A/AAAA record: add address records for it, or "
          "correct the SRV records");
  }
}

TEST_CASE("check dns: the attempt that got furthest is the one reported") {
  SUBCASE("refused") {
    const Verdict v = dns_verdict(one_target(attempt_at(Stage::connect, "Connection refused")), now);
    CHECK_FALSE(v.ok);
    CHECK(contains(v.summary, "FAILED: cannot connect to xmpp.a.test [127.0.0.2]:5269: Connection refused: check that "
                              "the XMPP server for a.test runs and listens on port 5269"));
  }
  SUBCASE("host-unknown") {
    Attempt a = attempt_at(Stage::stream, "stream error <host-unknown/>");
    a.stream_error = "host-unknown";
    const Verdict v = dns_verdict(one_target(a), now);
    CHECK(contains(v.summary, "does not serve a.test"));
  }
  SUBCASE("untrusted beats refused") {
    Attempt untrusted = attempt_at(Stage::certificate);
    untrusted.cert = good_cert("a.test");
    untrusted.cert->chain_ok = false;
    untrusted.cert->chain_error = "unable to get local issuer certificate (certificate at depth 0, the server's own)";
    DnsReport r = one_target(attempt_at(Stage::connect, "Connection refused"));
    r.targets[0].attempts.push_back(untrusted);
    const Verdict v = dns_verdict(r, now);
    CHECK_FALSE(v.ok);
    CHECK(contains(v.summary, "FAILED: the certificate of xmpp.a.test [127.0.0.2]:5269 is not trusted: unable to get "
                              "local issuer certificate"));
    CHECK(contains(v.summary, "[federation] ca_file (/etc/ca.pem)"));
  }
  SUBCASE("name mismatch") {
    Attempt a = attempt_at(Stage::certificate);
    a.cert = good_cert("other.test");
    a.cert->name_ok = false;
    const Verdict v = dns_verdict(one_target(a), now);
    CHECK(contains(v.summary, "does not name a.test (names: DNS names: other.test)"));
  }
  SUBCASE("expired") {
    Attempt a = attempt_at(Stage::certificate);
    a.cert = good_cert("a.test");
    a.cert->chain_ok = false;
    a.cert->chain_error = "certificate has expired (certificate at depth 0, the server's own)";
    a.cert->not_after = now - hours(30);
    const Verdict v = dns_verdict(one_target(a), now);
    CHECK(contains(v.summary, "expired on 2026-01-09 06:00:00 UTC: renew it"));
  }
  SUBCASE("TLS") {
    const Verdict v = dns_verdict(one_target(attempt_at(Stage::tls, "TLS error: wrong version number")), now);
    CHECK(contains(v.summary, "TLS handshake with xmpp.a.test [127.0.0.2]:5269 (STARTTLS) failed"));
  }
}

TEST_CASE("check certs: findings") {
  HostCertReport r;
  r.domain = "a.test";
  r.certificate_file = "/etc/a.crt";
  r.key_file = "/etc/a.key";
  r.ca_file = "/etc/ca.pem";
  r.key_matches = true;
  r.check = good_cert("a.test");
  CHECK(host_findings(r, now).empty());

  SUBCASE("expiring soon is a warning") {
    r.check.not_after = now + hours(24 * 3 + 1);
    const auto f = host_findings(r, now);
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == Finding::Level::warning);
    CHECK(contains(f[0].text, "in 3 days: renew it soon"));
  }
  SUBCASE("expired is one problem, not also a chain problem") {
    r.check.not_after = now - hours(2);
    r.check.chain_ok = false;
    r.check.chain_error = "certificate has expired (certificate at depth 0, the server's own)";
    const auto f = host_findings(r, now);
    REQUIRE(f.size() == 1);
    CHECK(f[0].level == Finding::Level::problem);
    CHECK(f[0].text == "the certificate expired on 2026-01-10 10:00:00 UTC: renew it");
  }
  SUBCASE("wrong key, wrong name, untrusted") {
    r.key_matches = false;
    r.check.name_ok = false;
    r.check.ids.dns_ids = {"other.test"};
    r.check.chain_ok = false;
    r.check.chain_error = "unable to get local issuer certificate (certificate at depth 0, the server's own)";
    const auto f = host_findings(r, now);
    REQUIRE(f.size() == 3);
    CHECK(contains(f[0].text, "the key in /etc/a.key does not belong to the certificate in /etc/a.crt"));
    CHECK(contains(f[1].text, "does not name a.test (names: DNS names: other.test)"));
    CHECK(contains(f[2].text, "does not verify against [federation] ca_file (/etc/ca.pem): unable to get local issuer"));
  }
  SUBCASE("unreadable files") {
    r.key_error = "no usable PEM private key in it (bad decrypt)";
    auto f = host_findings(r, now);
    REQUIRE(f.size() == 1);
    CHECK(contains(f[0].text, "cannot read the private key from /etc/a.key"));
    r.certificate_error = "no PEM certificate in it (no start line)";
    f = host_findings(r, now);
    REQUIRE(f.size() == 1);
    CHECK(contains(f[0].text, "cannot read a certificate from /etc/a.crt"));
  }
}
