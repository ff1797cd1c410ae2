#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/sasl/mechanism.hpp"
#include "server/sasl/plain.hpp"

using namespace herald::sasl;
using Kind = Step::Kind;

namespace {

const Credentials& secret() {
  static const Credentials c = make_credentials("s3cr\xC3\xA9t pass", 4096);
  return c;
}

std::string msg(std::string_view authzid, std::string_view authcid, std::string_view pass) {
  std::string m(authzid);
  m += '\0';
  m += authcid;
  m += '\0';
  m += pass;
  return m;
}

std::unique_ptr<Mechanism> plain() {
  ConnectionInfo info;
  info.secure = true;
  auto m = create_mechanism("PLAIN", info, offered_mechanisms(info, all_mechanism_names()));
  REQUIRE(m);
  return m;
}

Step run(Mechanism& m, std::string_view message, const std::optional<Credentials>& creds) {
  Step s = m.step(message);
  if (s.kind != Kind::lookup) return s;
  return m.provide(creds);
}

}  // namespace

TEST_CASE("PLAIN good password") {
  auto m = plain();
  CHECK(m->name() == "PLAIN");
  Step s = m->step(msg("", "juliet", "s3cr\xC3\xA9t pass"));
  REQUIRE(s.kind == Kind::lookup);
  CHECK(s.username == "juliet");
  s = m->provide(secret());
  CHECK(s.kind == Kind::success);
  CHECK(s.data.empty());
  CHECK(m->username() == "juliet");
  CHECK(m->authzid().empty());
}

TEST_CASE("PLAIN prepares username and password") {
  auto m = plain();
  // Uppercase username is case-mapped; e + U+0301 is NFC-normalised to U+00E9; a
  // NO-BREAK SPACE is mapped to SPACE by OpaqueString.
  Step s = m->step(msg("", "JULIET", "s3cre\xCC\x81t\xC2\xA0pass"));
  REQUIRE(s.kind == Kind::lookup);
  CHECK(s.username == "juliet");
  CHECK(m->provide(secret()).kind == Kind::success);
  CHECK(m->username() == "juliet");
}

TEST_CASE("PLAIN exposes authzid for the caller to check") {
  auto m = plain();
  CHECK(run(*m, msg("juliet@example.com", "juliet", "s3cr\xC3\xA9t pass"), secret()).kind == Kind::success);
  CHECK(m->authzid() == "juliet@example.com");
}

TEST_CASE("PLAIN wrong password and unknown user") {
  SUBCASE("wrong password") {
    auto m = plain();
    const Step s = run(*m, msg("", "juliet", "S3CR\xC3\x89T PASS"), secret());
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
    CHECK(m->username().empty());
  }
  SUBCASE("unknown user: same steps, same condition and text") {
    auto m = plain();
    Step s = m->step(msg("", "romeo", "whatever"));
    REQUIRE(s.kind == Kind::lookup);
    s = m->provide(std::nullopt);
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
    auto m2 = plain();
    CHECK(run(*m2, msg("", "juliet", "wrong"), secret()).text == s.text);
  }
  SUBCASE("password that fails preparation") {
    auto m = plain();
    const Step s = m->step(msg("", "juliet", "tab\there"));
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
  }
  SUBCASE("username that fails preparation") {
    auto m = plain();
    const Step s = m->step(msg("", "jul iet", "x"));
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
  }
}

TEST_CASE("PLAIN verifies against the strongest stored hash") {
  const auto& good = secret();
  SUBCASE("SHA-512 is used when present") {
    Credentials c = good;
    for (auto& k : c.keys) {
      if (k.hash != Hash::sha512) k.stored_key = std::string(k.stored_key.size(), 'x');
    }
    auto m = plain();
    CHECK(run(*m, msg("", "juliet", "s3cr\xC3\xA9t pass"), c).kind == Kind::success);
    Credentials broken = good;
    for (auto& k : broken.keys) {
      if (k.hash == Hash::sha512) k.stored_key = std::string(k.stored_key.size(), 'x');
    }
    auto m2 = plain();
    CHECK(run(*m2, msg("", "juliet", "s3cr\xC3\xA9t pass"), broken).kind == Kind::failure);
  }
  SUBCASE("SHA-1 only account") {
    Credentials c;
    c.keys.push_back(*good.find(Hash::sha1));
    auto m = plain();
    CHECK(run(*m, msg("", "juliet", "s3cr\xC3\xA9t pass"), c).kind == Kind::success);
  }
  SUBCASE("no keys at all") {
    auto m = plain();
    CHECK(run(*m, msg("", "juliet", "s3cr\xC3\xA9t pass"), Credentials{}).condition == Condition::not_authorized);
  }
}

TEST_CASE("PLAIN malformed messages") {
  const std::vector<std::string> bad{
      std::string("juliet"),                                // no NUL
      std::string("\0juliet", 7),                           // one NUL
      msg("", "", "pass"),                                  // empty authcid
      msg("", "juliet", ""),                                // empty password
      msg("", "juliet", "pa") + std::string("\0ss", 3),     // three NULs
      msg("", "jul\xFFiet", "pass"),                        // bad UTF-8
      msg("", "juliet", "pa\xC3"),                          // bad UTF-8
      msg("a\xFF", "juliet", "pass"),                       // bad UTF-8 authzid
      msg("", "juliet", std::string(9000, 'p')),            // absurdly long
  };
  for (const auto& m : bad) {
    CAPTURE(m);
    auto mech = plain();
    const Step s = mech->step(m);
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::malformed_request);
  }
}

TEST_CASE("PLAIN without initial response, and sequencing") {
  auto m = plain();
  Step s = m->step("");
  REQUIRE(s.kind == Kind::challenge);
  CHECK(s.data.empty());
  CHECK(run(*m, msg("", "juliet", "s3cr\xC3\xA9t pass"), secret()).kind == Kind::success);
  CHECK(m->step(msg("", "juliet", "x")).kind == Kind::failure);  // after success

  auto m2 = plain();
  REQUIRE(m2->step("").kind == Kind::challenge);
  CHECK(m2->step("").condition == Condition::malformed_request);

  auto m3 = plain();
  CHECK(m3->provide(secret()).condition == Condition::temporary_auth_failure);
}

TEST_CASE("PLAIN is never created without TLS") {
  ConnectionInfo info;  // not secure
  CHECK(create_mechanism("PLAIN", info, {"PLAIN"}) == nullptr);
}
