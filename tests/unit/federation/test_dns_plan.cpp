#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "federation/dns/plan.hpp"

using herald::federation::dns::connection_plan;
using herald::federation::dns::ConnectionPlan;
using herald::federation::dns::Random;
using herald::federation::dns::SrvRecord;
using herald::federation::dns::SrvResult;
using herald::federation::dns::Status;
using herald::federation::dns::Target;

namespace {

SrvResult records(std::vector<SrvRecord> list) {
  SrvResult r;
  r.status = Status::ok;
  r.records = std::move(list);
  r.ttl = std::chrono::seconds(300);
  return r;
}

SrvResult with_status(Status status, std::string error = {}) {
  SrvResult r;
  r.status = status;
  r.error = std::move(error);
  return r;
}

SrvResult dot() { return records({{0, 0, 0, "."}}); }
SrvResult not_found() { return with_status(Status::not_found, "no such domain (NXDOMAIN)"); }

Random first_entry() {
  return [](std::uint32_t) { return 0u; };
}

}  // namespace

TEST_CASE("plan: no SRV records at all falls back to the domain on 5269 with STARTTLS") {
  ConnectionPlan plan = connection_plan("example.org", not_found(), not_found());
  CHECK(plan.fallback);
  CHECK(plan.targets == std::vector<Target>{{"example.org", 5269, false}});
  CHECK(plan.reason.find("falling back") != std::string::npos);
  CHECK(plan.reason.find("_xmpps-server._tcp.example.org") != std::string::npos);
}

TEST_CASE("plan: failed lookups fall back too (RFC 6120 §3.2.2), and say why") {
  for (Status a : {Status::not_found, Status::error, Status::timeout}) {
    for (Status b : {Status::error, Status::timeout}) {
      ConnectionPlan plan = connection_plan("example.org", with_status(a, "x"), with_status(b, "SERVFAIL"));
      CHECK(plan.fallback);
      CHECK(plan.targets == std::vector<Target>{{"example.org", 5269, false}});
      CHECK(plan.reason.find("SERVFAIL") != std::string::npos);
    }
  }
}

TEST_CASE("plan: STARTTLS records only") {
  ConnectionPlan plan =
      connection_plan("example.org", not_found(), records({{10, 0, 5269, "b.example.org"}, {5, 0, 5299, "a.example.org"}}));
  CHECK_FALSE(plan.fallback);
  CHECK(plan.targets == std::vector<Target>{{"a.example.org", 5299, false}, {"b.example.org", 5269, false}});
}

TEST_CASE("plan: direct TLS records only") {
  ConnectionPlan plan = connection_plan("example.org", records({{0, 0, 5270, "tls.example.org"}}), not_found());
  CHECK(plan.targets == std::vector<Target>{{"tls.example.org", 5270, true}});
}

TEST_CASE("plan: both lists are ordered as one by priority (XEP-0368 §3)") {
  SrvResult xmpps = records({{20, 0, 5270, "d20"}, {5, 0, 5270, "d5"}});
  SrvResult xmpp = records({{10, 0, 5269, "s10"}, {30, 0, 5269, "s30"}, {5, 0, 5269, "s5"}});
  ConnectionPlan plan = connection_plan("example.org", xmpps, xmpp, first_entry());
  CHECK(plan.targets == std::vector<Target>{{"d5", 5270, true},
                                            {"s5", 5269, false},  // a tie: direct TLS first
                                            {"s10", 5269, false},
                                            {"d20", 5270, true},
                                            {"s30", 5269, false}});
}

TEST_CASE("plan: weights across both lists are drawn from one pool") {
  SrvResult xmpps = records({{1, 25, 5270, "tls"}});
  SrvResult xmpp = records({{1, 75, 5269, "plain"}});
  auto engine = std::make_shared<std::mt19937>(368);
  Random random = [engine](std::uint32_t bound) {
    return std::uniform_int_distribution<std::uint32_t>(0, bound)(*engine);
  };
  int direct_first = 0;
  const int runs = 10000;
  for (int i = 0; i < runs; ++i) {
    ConnectionPlan plan = connection_plan("example.org", xmpps, xmpp, random);
    REQUIRE(plan.targets.size() == 2);
    if (plan.targets.front().direct_tls) ++direct_first;
  }
  CHECK(std::abs(direct_first / double(runs) - 26.0 / 101.0) < 0.02);
}

TEST_CASE("plan: \".\" for both, or for one with nothing in the other: no service") {
  for (const SrvResult& other : {dot(), not_found(), with_status(Status::error, "SERVFAIL"),
                                 with_status(Status::timeout)}) {
    ConnectionPlan a = connection_plan("example.org", dot(), other);
    CHECK(a.targets.empty());
    CHECK_FALSE(a.fallback);
    CHECK(a.reason.find("offers no XMPP server-to-server service") != std::string::npos);
    ConnectionPlan b = connection_plan("example.org", other, dot());
    CHECK(b.targets.empty());
    CHECK_FALSE(b.fallback);
    CHECK(b.reason.find("target \".\"") != std::string::npos);
  }
}

TEST_CASE("plan: \".\" for one flavour withdraws only that flavour") {
  ConnectionPlan a = connection_plan("example.org", dot(), records({{0, 0, 5269, "xmpp.example.org"}}));
  CHECK(a.targets == std::vector<Target>{{"xmpp.example.org", 5269, false}});
  ConnectionPlan b = connection_plan("example.org", records({{0, 0, 5270, "xmpp.example.org"}}), dot());
  CHECK(b.targets == std::vector<Target>{{"xmpp.example.org", 5270, true}});
}

TEST_CASE("plan: root targets among real ones are skipped") {
  ConnectionPlan plan =
      connection_plan("example.org", not_found(), records({{0, 0, 0, "."}, {1, 0, 5269, "xmpp.example.org"}}));
  CHECK(plan.targets == std::vector<Target>{{"xmpp.example.org", 5269, false}});
}
