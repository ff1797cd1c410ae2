#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/sasl/mechanism.hpp"
#include "server/sasl/scram.hpp"
#include "tests/unit/sasl/scram_client.hpp"

using namespace herald::sasl;
using herald::sasl::test::scram_attr;
using herald::sasl::test::ScramClient;
using Kind = Step::Kind;

namespace {

constexpr std::uint32_t kIter = 4096;

const Credentials& pencil() {
  static const Credentials c = make_credentials("pencil", kIter);
  return c;
}

ConnectionInfo tls_with_bindings() {
  ConnectionInfo info;
  info.secure = true;
  info.channel_bindings = {{"tls-exporter", std::string("EXPORTER\0DATA", 13)},
                           {"tls-server-end-point", "ENDPOINT-HASH"}};
  return info;
}

std::string scram_name(Hash h, bool plus) {
  return "SCRAM-" + std::string(hash_name(h)) + (plus ? "-PLUS" : "");
}

std::unique_ptr<Mechanism> make(Hash h, bool plus, const ConnectionInfo& info) {
  const auto offered = offered_mechanisms(info, all_mechanism_names());
  auto m = create_mechanism(scram_name(h, plus), info, offered);
  REQUIRE(m);
  return m;
}

struct Outcome {
  Step last;
  int steps = 0;  // number of server answers sent to the client (challenge/success/failure)
  bool server_verified = false;
};

// Drives a full exchange: client-first, lookup, server-first, client-final.
Outcome run(Mechanism& m, ScramClient& c, const std::optional<Credentials>& creds) {
  Outcome o;
  Step s = m.step(c.first());
  if (s.kind == Kind::failure) {
    o.last = s;
    o.steps = 1;
    return o;
  }
  REQUIRE(s.kind == Kind::lookup);
  s = m.provide(creds);
  ++o.steps;
  if (s.kind != Kind::challenge) {
    o.last = s;
    return o;
  }
  const auto final_msg = c.final(s.data);
  REQUIRE(final_msg);
  s = m.step(*final_msg);
  ++o.steps;
  o.last = s;
  if (s.kind == Kind::success) o.server_verified = c.verify(s.data);
  return o;
}

Credentials rfc_credentials(Hash h, std::string_view b64_salt) {
  Credentials c;
  c.keys.push_back(derive_keys(h, "pencil", *base64_decode(b64_salt), 4096));
  return c;
}

}  // namespace

TEST_CASE("RFC 5802 §5 SCRAM-SHA-1 example, byte for byte") {
  ScramOptions opt;
  opt.server_nonce = "3rfcNHYJY1ZVvWVs7j";
  opt.downgrade_protection = false;  // the RFC predates XEP-0474
  ScramMechanism m(Hash::sha1, false, ConnectionInfo{}, {"SCRAM-SHA-1"}, opt);
  CHECK(m.name() == "SCRAM-SHA-1");

  Step s = m.step("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
  REQUIRE(s.kind == Kind::lookup);
  CHECK(s.username == "user");

  s = m.provide(rfc_credentials(Hash::sha1, "QSXCR+Q6sek8bf92"));
  REQUIRE(s.kind == Kind::challenge);
  CHECK(s.data == "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");

  s = m.step("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
  REQUIRE(s.kind == Kind::success);
  CHECK(s.data == "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
  CHECK(m.username() == "user");
  CHECK(m.authzid().empty());

  // Nothing more is accepted after success.
  CHECK(m.step("c=biws").kind == Kind::failure);
}

TEST_CASE("RFC 7677 §3 SCRAM-SHA-256 example, byte for byte") {
  ScramOptions opt;
  opt.server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  opt.downgrade_protection = false;
  ScramMechanism m(Hash::sha256, false, ConnectionInfo{}, {"SCRAM-SHA-256"}, opt);

  Step s = m.step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  REQUIRE(s.kind == Kind::lookup);
  CHECK(s.username == "user");

  s = m.provide(rfc_credentials(Hash::sha256, "W22ZaJ0SNY7soEsUEjb6gQ=="));
  REQUIRE(s.kind == Kind::challenge);
  CHECK(s.data == "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");

  s = m.step(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  REQUIRE(s.kind == Kind::success);
  CHECK(s.data == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  CHECK(m.username() == "user");
}

TEST_CASE("XEP-0474 example exchange (SCRAM-SHA-1-PLUS, tls-exporter), byte for byte") {
  ConnectionInfo info;
  info.secure = true;
  info.channel_bindings = {{"tls-exporter", "THIS IS FAKE CB DATA"}, {"tls-server-end-point", "other"}};
  ScramOptions opt;
  opt.server_nonce = "a09117a6-ac50-4f2f-93f1-93799c2bddf6";
  ScramMechanism m(Hash::sha1, true, info, {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"}, opt);

  Step s = m.step(*base64_decode("cD10bHMtZXhwb3J0ZXIsLG49dXNlcixyPTEyQzRDRDVDLUUzOEUtNEE5OC04RjZELTE1QzM4RjUxQ0NDNg=="));
  REQUIRE(s.kind == Kind::lookup);
  s = m.provide(rfc_credentials(Hash::sha1, "QSXCR+Q6sek8bf92"));
  REQUIRE(s.kind == Kind::challenge);
  CHECK(base64_encode(s.data) ==
        "cj0xMkM0Q0Q1Qy1FMzhFLTRBOTgtOEY2RC0xNUMzOEY1MUNDQzZhMDkxMTdhNi1hYzUwLTRmMmYtOTNmMS05Mzc5OWMyYmRkZjYscz1RU1hD"
        "UitRNnNlazhiZjkyLGk9NDA5NixoPUc2ay9yQkxEcWdPaFJSYUN1dWF0U0RGa0owOD0=");
  CHECK(scram_attr(s.data, 'h') == "G6k/rBLDqgOhRRaCuuatSDFkJ08=");

  // The client-final carries an unknown optional extension (x=), which must be ignored.
  s = m.step(*base64_decode(
      "Yz1jRDEwYkhNdFpYaHdiM0owWlhJc0xGUklTVk1nU1ZNZ1JrRkxSU0JEUWlCRVFWUkIscj0xMkM0Q0Q1Qy1FMzhFLTRBOTgtOEY2RC0xNUMz"
      "OEY1MUNDQzZhMDkxMTdhNi1hYzUwLTRmMmYtOTNmMS05Mzc5OWMyYmRkZjYseD0xOUM2NTMyRi0xQ0Y0LTRBMjctQTE4RC1EQzlDRUE0MUJC"
      "QjMscD1NL1NJRGpUK2RmY3hVaDg5alpFeXBSdkZ4QjQ9"));
  REQUIRE(s.kind == Kind::success);
  CHECK(base64_encode(s.data) == "dj1NUXJNUHZ2N3l2NHg0Q3E0VzRJaDI1RXFTMmM9");
  auto* scram = dynamic_cast<ScramMechanism*>(&m);
  REQUIRE(scram);
  CHECK(scram->channel_binding_type() == "tls-exporter");
}

TEST_CASE("XEP-0474 downgrade protection hash") {
  // The XEP's own example value.
  CHECK(downgrade_protection_hash(Hash::sha1, {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"},
                                  {"tls-exporter", "tls-server-end-point"}) == "G6k/rBLDqgOhRRaCuuatSDFkJ08=");
  // Input order does not matter: both lists are sorted with i;octet.
  CHECK(downgrade_protection_hash(Hash::sha1, {"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"},
                                  {"tls-server-end-point", "tls-exporter"}) == "G6k/rBLDqgOhRRaCuuatSDFkJ08=");
  // Without XEP-0440 advertisement there is no 0x1F section.
  CHECK(downgrade_protection_hash(Hash::sha256, {"SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-1"}, {}) ==
        base64_encode(digest(Hash::sha256, "PLAIN\x1ESCRAM-SHA-1\x1ESCRAM-SHA-256")));
  CHECK(downgrade_protection_hash(Hash::sha512, {"SCRAM-SHA-512-PLUS", "SCRAM-SHA-512"}, {"tls-exporter"}) ==
        base64_encode(digest(Hash::sha512, "SCRAM-SHA-512\x1ESCRAM-SHA-512-PLUS\x1Ftls-exporter")));

  SUBCASE("server-first carries h= over exactly what was advertised") {
    const auto info = tls_with_bindings();
    const auto offered = offered_mechanisms(info, all_mechanism_names());
    auto m = create_mechanism("SCRAM-SHA-256", info, offered);
    REQUIRE(m);
    ScramClient c;
    REQUIRE(m->step(c.first()).kind == Kind::lookup);
    const Step s = m->provide(pencil());
    REQUIRE(s.kind == Kind::challenge);
    std::string expect_s = "PLAIN";
    for (auto n : {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512",
                   "SCRAM-SHA-512-PLUS"}) {
      expect_s += '\x1E';
      expect_s += n;
    }
    expect_s += "\x1Ftls-exporter\x1Etls-server-end-point";
    CHECK(scram_attr(s.data, 'h') == base64_encode(digest(Hash::sha256, expect_s)));
  }
  SUBCASE("no channel-binding section when no -PLUS is offered") {
    const auto info = tls_with_bindings();
    const std::vector<std::string> offered{"SCRAM-SHA-256", "PLAIN"};  // -PLUS disabled by config
    CHECK(channel_binding_types(info, offered).empty());
    auto m = create_mechanism("SCRAM-SHA-256", info, offered);
    REQUIRE(m);
    ScramClient c;
    REQUIRE(m->step(c.first()).kind == Kind::lookup);
    const Step s = m->provide(pencil());
    CHECK(scram_attr(s.data, 'h') == base64_encode(digest(Hash::sha256, "PLAIN\x1ESCRAM-SHA-256")));
  }
  SUBCASE("the hash uses the mechanism's own hash function") {
    ConnectionInfo info;  // no TLS, no bindings
    const auto offered = offered_mechanisms(info, all_mechanism_names());
    for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) {
      auto m = create_mechanism(scram_name(h, false), info, offered);
      REQUIRE(m);
      ScramClient c;
      c.hash = h;
      REQUIRE(m->step(c.first()).kind == Kind::lookup);
      const Step s = m->provide(pencil());
      CHECK(scram_attr(s.data, 'h') == downgrade_protection_hash(h, offered, {}));
    }
  }
}

TEST_CASE("round trips for every hash, with and without channel binding") {
  const auto info = tls_with_bindings();
  for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) {
    CAPTURE(hash_name(h));
    SUBCASE("non-PLUS, client without binding support ('n')") {
      auto m = make(h, false, info);
      ScramClient c;
      c.hash = h;
      const auto o = run(*m, c, pencil());
      CHECK(o.last.kind == Kind::success);
      CHECK(o.server_verified);
      CHECK(m->username() == "user");
      CHECK_FALSE(c.h.empty());
    }
    for (const auto& cb : info.channel_bindings) {
      CAPTURE(cb.type);
      auto m = make(h, true, info);
      ScramClient c;
      c.hash = h;
      c.gs2 = "p=" + cb.type + ",,";
      c.cb_data = cb.data;
      const auto o = run(*m, c, pencil());
      CHECK(o.last.kind == Kind::success);
      CHECK(o.server_verified);
      CHECK(m->name() == scram_name(h, true));
      CHECK(dynamic_cast<ScramMechanism&>(*m).channel_binding_type() == cb.type);
    }
  }
}

TEST_CASE("'y' flag: accepted without -PLUS on offer, downgrade detected with it") {
  SUBCASE("server cannot bind: 'y' is fine") {
    ConnectionInfo info;
    info.secure = true;
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.gs2 = "y,,";
    const auto o = run(*m, c, pencil());
    CHECK(o.last.kind == Kind::success);
    CHECK(o.server_verified);
  }
  SUBCASE("server offered -PLUS: 'y' means the list was stripped") {
    auto m = make(Hash::sha256, false, tls_with_bindings());
    ScramClient c;
    c.gs2 = "y,,";
    const Step s = m->step(c.first());
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
  }
  SUBCASE("'y' cannot be smuggled through c= either") {
    ConnectionInfo info;
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.gs2 = "n,,";
    REQUIRE(m->step(c.first()).kind == Kind::lookup);
    const Step s1 = m->provide(pencil());
    c.gs2 = "y,,";  // client-final claims a different gs2 header
    const auto f = c.final(s1.data);
    REQUIRE(f);
    const Step s2 = m->step(*f);
    CHECK(s2.kind == Kind::failure);
    CHECK(s2.condition == Condition::not_authorized);
  }
}

TEST_CASE("channel binding failures") {
  const auto info = tls_with_bindings();
  SUBCASE("binding data mismatch (MITM)") {
    auto m = make(Hash::sha256, true, info);
    ScramClient c;
    c.gs2 = "p=tls-exporter,,";
    c.cb_data = "DATA SEEN BY A MITM";
    const auto o = run(*m, c, pencil());
    CHECK(o.last.kind == Kind::failure);
    CHECK(o.last.condition == Condition::not_authorized);
    CHECK(o.steps == 2);
  }
  SUBCASE("data of the other binding type") {
    auto m = make(Hash::sha256, true, info);
    ScramClient c;
    c.gs2 = "p=tls-exporter,,";
    c.cb_data = "ENDPOINT-HASH";
    CHECK(run(*m, c, pencil()).last.condition == Condition::not_authorized);
  }
  SUBCASE("binding type we do not have") {
    auto m = make(Hash::sha256, true, info);
    ScramClient c;
    c.gs2 = "p=tls-unique,,";
    const Step s = m->step(c.first());
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
  }
  SUBCASE("-PLUS without binding") {
    for (std::string flag : {"n,,", "y,,"}) {
      auto m = make(Hash::sha256, true, info);
      ScramClient c;
      c.gs2 = flag;
      const Step s = m->step(c.first());
      CHECK(s.kind == Kind::failure);
      CHECK(s.condition == Condition::malformed_request);
    }
  }
  SUBCASE("binding requested on a non-PLUS mechanism") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.gs2 = "p=tls-exporter,,";
    const Step s = m->step(c.first());
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::malformed_request);
  }
  SUBCASE("'n' client must not send binding data in c=") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.cb_data = "EXTRA";
    CHECK(run(*m, c, pencil()).last.condition == Condition::not_authorized);
  }
}

TEST_CASE("wrong password and unknown user look the same to the client") {
  const ConnectionInfo info;
  SUBCASE("wrong password") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.password = "pencil2";
    const auto o = run(*m, c, pencil());
    CHECK(o.last.kind == Kind::failure);
    CHECK(o.last.condition == Condition::not_authorized);
    CHECK(o.steps == 2);
    CHECK(m->username().empty());
  }
  SUBCASE("unknown user") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.user = "nobody";
    const auto o = run(*m, c, std::nullopt);
    CHECK(o.last.kind == Kind::failure);
    CHECK(o.last.condition == Condition::not_authorized);
    CHECK(o.steps == 2);
    CHECK(m->username().empty());
  }
  SUBCASE("failure text does not tell them apart") {
    auto m1 = make(Hash::sha256, false, info);
    ScramClient c1;
    c1.password = "wrong";
    auto m2 = make(Hash::sha256, false, info);
    ScramClient c2;
    c2.user = "nobody";
    CHECK(run(*m1, c1, pencil()).last.text == run(*m2, c2, std::nullopt).last.text);
  }
  SUBCASE("fake salt is stable per user, differs between users, iterations as configured") {
    MechanismOptions opts;
    opts.unknown_user_iterations = 12345;
    const auto offered = offered_mechanisms(info, all_mechanism_names());
    auto first_salt = [&](std::string user) {
      auto m = create_mechanism("SCRAM-SHA-256", info, offered, opts);
      ScramClient c;
      c.user = user;
      REQUIRE(m->step(c.first()).kind == Kind::lookup);
      const Step s = m->provide(std::nullopt);
      REQUIRE(s.kind == Kind::challenge);
      CHECK(scram_attr(s.data, 'i') == "12345");
      CHECK(base64_decode(*scram_attr(s.data, 's'))->size() == 16);
      return *scram_attr(s.data, 's');
    };
    CHECK(first_salt("nobody") == first_salt("nobody"));
    CHECK(first_salt("nobody") == first_salt("NoBody"));  // same prepared name
    CHECK(first_salt("nobody") != first_salt("someone"));
  }
  SUBCASE("account without keys for this hash") {
    Credentials only_sha1;
    only_sha1.keys.push_back(*pencil().find(Hash::sha1));
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    CHECK(run(*m, c, only_sha1).last.condition == Condition::not_authorized);
  }
}

TEST_CASE("usernames: escapes, preparation, authzid") {
  const ConnectionInfo info;
  SUBCASE("=2C and =3D are decoded before preparation") {
    auto m = make(Hash::sha256, false, info);
    const Step s = m->step("n,,n=a=2Cb=3Dc,r=abc");
    REQUIRE(s.kind == Kind::lookup);
    CHECK(s.username == "a,b=c");
  }
  SUBCASE("case is mapped for lookup, proof uses the name as sent") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.user = "User";
    const auto o = run(*m, c, pencil());
    CHECK(o.last.kind == Kind::success);
    CHECK(m->username() == "user");
  }
  SUBCASE("unpreparable username") {
    auto m = make(Hash::sha256, false, info);
    const Step s = m->step("n,,n=a b,r=abc");
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::not_authorized);
  }
  SUBCASE("authzid is decoded and exposed after success") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.gs2 = "n,a=user@example.com,";
    const auto o = run(*m, c, pencil());
    REQUIRE(o.last.kind == Kind::success);
    CHECK(m->authzid() == "user@example.com");
  }
  SUBCASE("authzid with escapes") {
    auto m = make(Hash::sha256, false, info);
    ScramClient c;
    c.gs2 = "n,a=x=2Cy=3Dz,";
    REQUIRE(run(*m, c, pencil()).last.kind == Kind::success);
    CHECK(m->authzid() == "x,y=z");
  }
}

TEST_CASE("no initial response: empty challenge first") {
  auto m = make(Hash::sha256, false, ConnectionInfo{});
  Step s = m->step("");
  REQUIRE(s.kind == Kind::challenge);
  CHECK(s.data.empty());
  ScramClient c;
  s = m->step(c.first());
  REQUIRE(s.kind == Kind::lookup);
  s = m->provide(pencil());
  REQUIRE(s.kind == Kind::challenge);
  s = m->step(*c.final(s.data));
  CHECK(s.kind == Kind::success);

  auto m2 = make(Hash::sha256, false, ConnectionInfo{});
  REQUIRE(m2->step("").kind == Kind::challenge);
  const Step s2 = m2->step("");
  CHECK(s2.kind == Kind::failure);
  CHECK(s2.condition == Condition::malformed_request);
}

TEST_CASE("unknown optional extensions are ignored") {
  auto m = make(Hash::sha256, false, ConnectionInfo{});
  ScramClient c;
  Step s = m->step(c.first() + ",x=whatever,q=1");
  REQUIRE(s.kind == Kind::lookup);
  // The client must sign the bare message it actually sent.
  c.client_first_bare += ",x=whatever,q=1";
  c.final_extensions = ",z=1";
  s = m->provide(pencil());
  s = m->step(*c.final(s.data));
  CHECK(s.kind == Kind::success);
}

TEST_CASE("malformed client-first-message") {
  const std::vector<std::string> bad{
      "x,,n=user,r=abc",         // bad flag
      "n",                       // truncated
      "n,",                      // truncated
      "n,n=user,r=abc",          // missing second comma
      "n,x=y,n=user,r=abc",      // unknown gs2 field
      "n,a=,n=user,r=abc",       // empty authzid
      "n,a=b=2Xc,n=user,r=abc",  // bad escape in authzid
      "p=,,n=user,r=abc",        // empty cb-name
      "p=tls exporter,,n=user,r=abc",
      "p=tls-exporter",          // no comma
      "n,,",                     // nothing after header
      "n,,r=abc",                // missing n=
      "n,,n=user",               // missing r=
      "n,,r=abc,n=user",         // wrong order
      "n,,n=,r=abc",             // empty username
      "n,,n=us=2Xer,r=abc",      // bad escape
      "n,,n=user=,r=abc",        // lone '='
      "n,,n=us=2cer,r=abc",      // escapes are upper case
      "n,,n=user,r=",            // empty nonce
      "n,,n=user,r=ab\x7F",      // non-printable nonce
      "n,,n=user,r=abc,",        // trailing comma
      "n,,n=user,r=abc,,x=1",    // empty attribute
      "n,,n=user,r=abc,x",       // attribute without value
      "n,,n=user,r=abc,1=2",     // attribute name not ALPHA
      "n,,m=ext,n=user,r=abc",   // mandatory extension
      "n,,n=user,r=abc,m=ext",   // 'm' anywhere
      "n,,n=us\xFF" "er,r=abc",  // invalid UTF-8
      std::string("n,,n=us\0er,r=abc", 16),
      std::string(10000, 'n'),
  };
  for (const auto& msg : bad) {
    CAPTURE(msg);
    auto m = make(Hash::sha256, false, ConnectionInfo{});
    const Step s = m->step(msg);
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == Condition::malformed_request);
    // And the mechanism is finished.
    CHECK(m->step("n,,n=user,r=abc").kind == Kind::failure);
  }
}

TEST_CASE("malformed client-final-message") {
  auto prepared = [](ScramClient& c) {
    auto m = make(Hash::sha256, false, ConnectionInfo{});
    REQUIRE(m->step(c.first()).kind == Kind::lookup);
    const Step s = m->provide(pencil());
    REQUIRE(s.kind == Kind::challenge);
    return std::make_pair(std::move(m), s.data);
  };
  ScramClient c;
  auto [m0, sf] = prepared(c);
  const std::string good = *c.final(sf);
  const std::string nonce = *scram_attr(sf, 'r');
  const std::string proof = *scram_attr(good, 'p');

  const std::vector<std::pair<std::string, Condition>> cases{
      {"c=biws,r=" + nonce, Condition::malformed_request},                           // no proof
      {"r=" + nonce + ",p=" + proof, Condition::malformed_request},                  // no c=
      {"c=biws,p=" + proof, Condition::malformed_request},                           // no r=
      {"r=" + nonce + ",c=biws,p=" + proof, Condition::malformed_request},           // order
      {"c=biws,r=" + nonce + ",p=" + proof + ",x=1", Condition::malformed_request},  // proof not last
      {"c=bi!s,r=" + nonce + ",p=" + proof, Condition::malformed_request},           // not base64
      {"c=biws=,r=" + nonce + ",p=" + proof, Condition::malformed_request},          // bad padding
      {"c=biws,r=" + nonce + ",p=AAAA", Condition::malformed_request},               // proof too short
      {"c=biws,r=" + nonce + ",p=" + proof.substr(1), Condition::malformed_request}, // proof not base64
      {"c=biws,r=" + nonce + "x,p=" + proof, Condition::malformed_request},          // wrong nonce
      {"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" + proof, Condition::malformed_request},    // client nonce only
      {"c=biws,r=" + nonce + ",m=1,p=" + proof, Condition::malformed_request},       // mandatory ext
      {"c=biws,r=" + nonce + ",,p=" + proof, Condition::malformed_request},          // empty attr
      {"", Condition::malformed_request},
      {"c=biws,r=" + nonce + ",p=" + base64_encode(std::string(32, 'x')), Condition::not_authorized},
  };
  for (const auto& [msg, cond] : cases) {
    CAPTURE(msg);
    ScramClient c2;
    auto [m, sf2] = prepared(c2);
    // Every case uses the nonce of the first exchange: replace it with this one's.
    std::string adjusted = msg;
    if (const auto at = adjusted.find(nonce); at != std::string::npos) {
      adjusted.replace(at, nonce.size(), *scram_attr(sf2, 'r'));
    }
    const Step s = m->step(adjusted);
    CHECK(s.kind == Kind::failure);
    CHECK(s.condition == cond);
  }
  // The original good message still works on its own exchange.
  CHECK(m0->step(good).kind == Kind::success);
}

TEST_CASE("call sequence errors") {
  auto m = make(Hash::sha256, false, ConnectionInfo{});
  const Step s = m->provide(pencil());
  CHECK(s.kind == Kind::failure);
  CHECK(s.condition == Condition::temporary_auth_failure);

  auto m2 = make(Hash::sha256, false, ConnectionInfo{});
  ScramClient c;
  REQUIRE(m2->step(c.first()).kind == Kind::lookup);
  CHECK(m2->step("c=biws").kind == Kind::failure);  // step() while waiting for provide()
}
