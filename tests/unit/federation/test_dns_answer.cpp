#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "federation/dns/answer.hpp"
#include "tests/unit/federation/dns_message.hpp"

using herald::federation::dns::parse_srv_answer;
using herald::federation::dns::SrvRecord;
using herald::federation::dns::SrvResult;
using herald::federation::dns::Status;
using herald::test::DnsMessage;
using herald::test::from_hex;

namespace {

SrvResult parse(const std::vector<std::uint8_t>& bytes) {
  return parse_srv_answer(std::span<const std::uint8_t>(bytes.data(), bytes.size()));
}

// Answers captured from dnsmasq 2.90 (--local-ttl=30) for the resolver tests' zone.
const char* const captured_two_srv =
    "1234858000010002000000010c5f786d70702d736572766572045f746370016104746573740000210001c00c00"
    "2100010000001e00110014000014960268320161047465737400c00c002100010000001e0011000a003c149502"
    "68310161047465737400c059000100010000001e00047f000002";
const char* const captured_dot =
    "1234858000010001000000000c5f786d70702d736572766572045f746370046e6f6e6504746573740000210001"
    "c00c002100010000001e000700000000000100";
const char* const captured_nxdomain =
    "1234818300010000000000000c5f786d70702d736572766572045f746370027a7a04746573740000210001";
const char* const captured_nodata = "123481800001000000000000026831016104746573740000210001";
const char* const captured_refused = "123481850001000000000000046e6f7065076578616d706c650000010001";

}  // namespace

TEST_CASE("dns answer: SRV records and TTL from a real dnsmasq answer") {
  SrvResult r = parse(from_hex(captured_two_srv));
  REQUIRE(r.status == Status::ok);
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[0] == SrvRecord{20, 0, 5270, "h2.a.test"});
  CHECK(r.records[1] == SrvRecord{10, 60, 5269, "h1.a.test"});
  CHECK(r.ttl == std::chrono::seconds(30));
  CHECK(r.error.empty());
}

TEST_CASE("dns answer: the root target comes back as \".\"") {
  SrvResult r = parse(from_hex(captured_dot));
  REQUIRE(r.status == Status::ok);
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0] == SrvRecord{0, 0, 1, "."});
}

TEST_CASE("dns answer: NXDOMAIN and NODATA are not_found, other rcodes are errors") {
  SrvResult nx = parse(from_hex(captured_nxdomain));
  CHECK(nx.status == Status::not_found);
  CHECK(nx.error.find("NXDOMAIN") != std::string::npos);
  SrvResult nodata = parse(from_hex(captured_nodata));
  CHECK(nodata.status == Status::not_found);
  CHECK(nodata.error.find("NODATA") != std::string::npos);
  SrvResult refused = parse(from_hex(captured_refused));
  CHECK(refused.status == Status::error);
  CHECK(refused.error.find("REFUSED") != std::string::npos);
  CHECK(parse(DnsMessage(0x8182).question("x.test").bytes()).error.find("SERVFAIL") != std::string::npos);
  CHECK(parse(DnsMessage(0x818B).question("x.test").bytes()).error.find("rcode 11") != std::string::npos);
}

TEST_CASE("dns answer: compressed names, CNAME TTLs and other records") {
  // Question at offset 12; the SRV owner and target point back into it.
  DnsMessage m;
  m.question("_xmpp-server._tcp.example.org");
  const std::uint16_t example_org = 12 + 1 + 12 + 1 + 4;  // "example.org" inside the question
  m.cname("_xmpp-server._tcp.example.org", 100, "srv.example.net");
  // owner: pointer to the question name; target: "xmpp" + pointer to "example.org"
  m.pointer(12).u16(33).u16(1).u32(300).u16(6 + 5 + 2);
  m.u16(5).u16(7).u16(5269).u8(4).u8('x').u8('m').u8('p').u8('p').pointer(example_org);
  // hand-patch ancount: pointer-built RR above was not counted
  std::vector<std::uint8_t> bytes = m.bytes();
  bytes[7] = 2;
  // A record in the answer (ignored) and a CHAOS-class SRV (ignored)
  SrvResult r = parse(bytes);
  REQUIRE(r.status == Status::ok);
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0] == SrvRecord{5, 7, 5269, "xmpp.example.org"});
  CHECK(r.ttl == std::chrono::seconds(100));  // the CNAME's TTL bounds the answer's

  DnsMessage other;
  other.question("_xmpp-server._tcp.a.test")
      .a("_xmpp-server._tcp.a.test", 5, 0x7f000001)
      .rr("_xmpp-server._tcp.a.test", 33, 5, 6 + 3, 3)
      .u16(1).u16(1).u16(1).name("x")
      .srv("_xmpp-server._tcp.a.test", 0x80000000u, 1, 2, 3, "y.a.test");
  SrvResult o = parse(other.bytes());
  REQUIRE(o.status == Status::ok);
  REQUIRE(o.records.size() == 1);  // the class-3 record is not IN
  CHECK(o.records[0].target == "y.a.test");
  CHECK(o.ttl == std::chrono::seconds(0));  // a TTL with the high bit set counts as 0 (RFC 2181)
}

TEST_CASE("dns answer: minimum TTL over several records; the additional section is not needed") {
  DnsMessage m;
  m.question("_s._tcp.a.test")
      .srv("_s._tcp.a.test", 600, 1, 1, 1, "a.a.test")
      .srv("_s._tcp.a.test", 42, 1, 1, 1, "b.a.test")
      .a("a.a.test", 1, 1)
      .as_additional();
  SrvResult r = parse(m.bytes());
  REQUIRE(r.status == Status::ok);
  CHECK(r.records.size() == 2);
  CHECK(r.ttl == std::chrono::seconds(42));
}

TEST_CASE("dns answer: unusual label bytes are escaped") {
  DnsMessage m;
  m.question("_s._tcp.a.test")
      .rr("_s._tcp.a.test", 33, 9, 6 + 1 + 4 + 1)
      .u16(0).u16(0).u16(1)
      .u8(4).u8('a').u8('.').u8('\\').u8(0x01)
      .u8(0);
  SrvResult r = parse(m.bytes());
  REQUIRE(r.status == Status::ok);
  CHECK(r.records[0].target == "a\\.\\\\\\001");
}

TEST_CASE("dns answer: malformed messages are errors, never crashes") {
  auto error_of = [](const std::vector<std::uint8_t>& bytes) {
    SrvResult r = parse(bytes);
    CHECK(r.status == Status::error);
    CHECK(r.records.empty());
    return r.error;
  };
  CHECK(error_of({}).find("header") != std::string::npos);
  CHECK(error_of(from_hex("12348580000100")).find("header") != std::string::npos);
  CHECK(error_of(DnsMessage(0x0100).question("x.test").bytes()).find("not a response") != std::string::npos);
  CHECK(error_of(DnsMessage(0x8380).question("x.test").bytes()).find("truncated") != std::string::npos);
  CHECK(error_of(DnsMessage(0x8980).question("x.test").bytes()).find("opcode") != std::string::npos);

  SUBCASE("pointer loops and forward pointers") {
    DnsMessage self;
    self.pointer(12).u16(33).u16(1);  // the question's name points at itself
    std::vector<std::uint8_t> b = self.bytes();
    b[5] = 1;
    error_of(b);
    DnsMessage forward;
    forward.pointer(14).u8(0).u16(33).u16(1);  // points past itself
    b = forward.bytes();
    b[5] = 1;
    error_of(b);
    // A backward chain that cycles through a label: "x" then a pointer back to "x".
    DnsMessage cycle;
    cycle.u8(1).u8('x').pointer(12);
    b = cycle.bytes();
    b[5] = 1;
    error_of(b);
  }
  SUBCASE("extended label types and over-long names") {
    DnsMessage extended;
    extended.u8(0x41).u8(0).u16(33).u16(1);
    std::vector<std::uint8_t> b = extended.bytes();
    b[5] = 1;
    error_of(b);
    std::string long_name;
    for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
    error_of(DnsMessage().question(long_name).bytes());
  }
  SUBCASE("record data that does not fit") {
    DnsMessage short_rdata;
    short_rdata.question("s.test").rr("s.test", 33, 1, 5).u16(1).u16(1).u8(1);
    error_of(short_rdata.bytes());
    DnsMessage trailing;
    trailing.question("s.test").rr("s.test", 33, 1, 6 + 1 + 2).u16(1).u16(1).u16(1).u8(0).u16(0);
    error_of(trailing.bytes());
    DnsMessage overrun;
    overrun.question("s.test").rr("s.test", 33, 1, 200).u16(1).u16(1).u16(1).u8(0);
    error_of(overrun.bytes());
    DnsMessage name_past_rdata;  // rdlength 7 but the target name is longer
    name_past_rdata.question("s.test").rr("s.test", 33, 1, 7).u16(1).u16(1).u16(1).name("long.target");
    error_of(name_past_rdata.bytes());
  }
  SUBCASE("counts larger than the message") {
    std::vector<std::uint8_t> b = from_hex(captured_two_srv);
    b[7] = 9;  // ancount 9
    error_of(b);
    b = from_hex(captured_two_srv);
    b[5] = 3;  // qdcount 3: the answers are read as questions; whatever comes out, no crash
    SrvResult r = parse(b);
    CHECK((r.status != Status::ok || !r.records.empty()));
  }
}

TEST_CASE("dns answer: every truncation and many bit flips of a valid answer are handled") {
  const std::vector<std::uint8_t> full = from_hex(captured_two_srv);
  const SrvResult whole = parse(full);
  // The answer section ends where the additional A record begins (16 bytes before the end).
  const std::size_t answers_end = full.size() - 16;
  for (std::size_t n = 0; n < full.size(); ++n) {
    std::vector<std::uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    SrvResult r = parse(prefix);
    if (n < answers_end) {
      CHECK(r.status == Status::error);
    } else {
      CHECK(r.status == Status::ok);
      CHECK(r.records == whole.records);
    }
  }
  std::mt19937 rng(2782);
  int ok = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::uint8_t> mutated = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) mutated[rng() % mutated.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    SrvResult r = parse(mutated);
    if (r.status == Status::ok) {
      ++ok;
      CHECK(!r.records.empty());
      for (const SrvRecord& record : r.records) CHECK(!record.target.empty());
    } else {
      CHECK(r.records.empty());
      CHECK(!r.error.empty());
    }
  }
  CHECK(ok > 0);  // flips in TTLs, weights, ports... leave valid answers
}
