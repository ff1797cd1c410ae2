#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

#include "server/xmpp/jid.hpp"

using herald::xmpp::Jid;
using herald::xmpp::JidHash;
using herald::xmpp::prep_domain;
using herald::xmpp::prep_localpart;
using herald::xmpp::prep_resource;

namespace {

Jid must(std::string_view s) {
  auto j = Jid::parse(s);
  REQUIRE_MESSAGE(j.has_value(), "expected a valid JID: ", std::string(s));
  return *j;
}

}  // namespace

TEST_CASE("RFC 7622 §3.5 table 1: legal JIDs") {
  SUBCASE("1 bare JID") {
    auto j = must("juliet@example.com");
    CHECK(j.local() == "juliet");
    CHECK(j.domain() == "example.com");
    CHECK(j.resource().empty());
    CHECK(j.is_bare());
    CHECK_FALSE(j.is_domain());
  }
  SUBCASE("2 full JID") {
    auto j = must("juliet@example.com/foo");
    CHECK(j.resource() == "foo");
    CHECK_FALSE(j.is_bare());
    CHECK(j.str() == "juliet@example.com/foo");
    CHECK(j.bare_str() == "juliet@example.com");
  }
  SUBCASE("3 space in resource") { CHECK(must("juliet@example.com/foo bar").resource() == "foo bar"); }
  SUBCASE("4 at sign in resource") { CHECK(must("juliet@example.com/foo@bar").resource() == "foo@bar"); }
  SUBCASE("5 escaped space in localpart") { CHECK(must("foo\\20bar@example.com").local() == "foo\\20bar"); }
  SUBCASE("6 and 7 are distinct") {
    auto a = must("fussball@example.com");
    auto b = must("fu\xC3\x9F" "ball@example.com");
    CHECK(b.local() == "fu\xC3\x9F" "ball");
    CHECK(a != b);
  }
  SUBCASE("8 pi") { CHECK(must("\xCF\x80@example.com").local() == "\xCF\x80"); }
  SUBCASE("9-11 sigma") {
    auto cap = must("\xCE\xA3@example.com/foo");    // U+03A3
    auto small = must("\xCF\x83@example.com/foo");  // U+03C3
    auto fin = must("\xCF\x82@example.com/foo");    // U+03C2
    CHECK(cap.local() == "\xCF\x83");
    CHECK(cap == small);
    CHECK(cap != fin);
    CHECK(small != fin);
  }
  SUBCASE("12 chess king in resource") {
    CHECK(must("king@example.com/\xE2\x99\x9A").resource() == "\xE2\x99\x9A");
  }
  SUBCASE("13 domain") {
    auto j = must("example.com");
    CHECK(j.is_domain());
    CHECK(j.local().empty());
    CHECK(j.str() == "example.com");
  }
  SUBCASE("14 domain and resource") {
    auto j = must("example.com/foobar");
    CHECK(j.domain() == "example.com");
    CHECK(j.resource() == "foobar");
    CHECK(j.local().empty());
    CHECK_FALSE(j.is_domain());
  }
  SUBCASE("15 resource with at sign after a domain") {
    auto j = must("a.example.com/b@example.net");
    CHECK(j.local().empty());
    CHECK(j.domain() == "a.example.com");
    CHECK(j.resource() == "b@example.net");
  }
}

TEST_CASE("RFC 7622 §3.5 table 2: strings that are not JIDs") {
  CHECK_FALSE(Jid::parse("\"juliet\"@example.com"));   // 16
  CHECK_FALSE(Jid::parse("foo bar@example.com"));      // 17
  CHECK_FALSE(Jid::parse("juliet@example.com/ foo"));  // 18
  CHECK_FALSE(Jid::parse("@example.com/"));            // 19
  CHECK_FALSE(Jid::parse("henry\xE2\x85\xA3@example.com"));  // 20: U+2163
  CHECK_FALSE(Jid::parse("\xE2\x99\x9A@example.com"));       // 21: U+265A
  CHECK_FALSE(Jid::parse("juliet@"));                  // 22
  CHECK_FALSE(Jid::parse("/foobar"));                  // 23
}

TEST_CASE("other malformed JIDs") {
  CHECK_FALSE(Jid::parse(""));
  CHECK_FALSE(Jid::parse("@example.com"));
  CHECK_FALSE(Jid::parse("juliet@example.com/"));
  CHECK_FALSE(Jid::parse("a@b@example.com"));          // '@' ends up in the domain
  CHECK_FALSE(Jid::parse("juliet@exa mple.com"));
  CHECK_FALSE(Jid::parse("juliet@example..com"));
  CHECK_FALSE(Jid::parse("juliet@.example.com"));
  CHECK_FALSE(Jid::parse("juliet@example.com.."));
  CHECK_FALSE(Jid::parse("juliet@-example.com"));
  CHECK_FALSE(Jid::parse("juliet@ex_ample.com"));
  CHECK_FALSE(Jid::parse("."));
  for (std::string bad : {"ju:liet", "ju<liet", "ju>liet", "ju&liet", "ju'liet"}) {
    CHECK_FALSE(Jid::parse(bad + "@example.com"));
  }
}

TEST_CASE("invalid UTF-8 and control characters are rejected") {
  CHECK_FALSE(prep_localpart("ju\xFFliet"));
  CHECK_FALSE(prep_localpart("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(prep_localpart("\xED\xA0\x80"));      // encoded surrogate
  CHECK_FALSE(prep_localpart("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(prep_localpart("abc\xE2\x82"));       // truncated
  CHECK_FALSE(prep_resource("re\xFFs"));
  CHECK_FALSE(prep_domain("exa\xFFmple.com"));
  CHECK_FALSE(prep_localpart(std::string("a\0b", 3)));
  CHECK_FALSE(prep_resource(std::string("a\0b", 3)));
  CHECK_FALSE(prep_resource("a\tb"));
  CHECK_FALSE(prep_resource("a\nb"));
  CHECK_FALSE(prep_localpart("a\x7F"));
  CHECK_FALSE(prep_localpart("a\xC2\x85"));         // U+0085 NEL
  CHECK_FALSE(prep_resource("a\xC2\xAD" "b"));      // U+00AD soft hyphen: default ignorable
  CHECK_FALSE(prep_resource("\xEF\xBF\xBF"));       // U+FFFF noncharacter
  CHECK_FALSE(prep_resource("\xEE\x80\x80"));       // U+E000 private use
  CHECK_FALSE(Jid::parse("juliet@example.com/a\x01" "b"));
}

TEST_CASE("localpart case mapping and normalisation") {
  CHECK(prep_localpart("JULIET") == "juliet");
  CHECK(prep_localpart("Juliet") == "juliet");
  CHECK(prep_localpart("\xC3\x84rger") == "\xC3\xA4rger");       // Ä -> ä
  CHECK(prep_localpart("A\xCC\x88rger") == "\xC3\xA4rger");      // A + U+0308 -> ä (NFC)
  CHECK(prep_localpart("\xEF\xBC\xA1" "bc") == "abc");           // fullwidth A: width-mapped
  CHECK_FALSE(prep_localpart("\xEF\xBC\xA0" "x"));                // fullwidth @ maps to '@'
  CHECK(prep_localpart("juliet@example.com") == std::nullopt);   // '@' excluded by RFC 7622
  CHECK_FALSE(prep_localpart(""));
  CHECK_FALSE(prep_localpart(" "));
  CHECK_FALSE(prep_localpart("a b"));
  CHECK_FALSE(prep_localpart("\xE2\x80\x83"));                    // EM SPACE
  CHECK_FALSE(prep_localpart("\xEF\xAC\x81"));                    // U+FB01 ligature: HasCompat
  CHECK_FALSE(prep_localpart("\xC7\x85"));                        // U+01C5 titlecase
  CHECK(prep_localpart("\xD8\xB3\xD9\x84\xD8\xA7\xD9\x85") == "\xD8\xB3\xD9\x84\xD8\xA7\xD9\x85");
  CHECK_FALSE(prep_localpart("\xD8\xB3" "a"));                     // RTL then LTR: Bidi Rule
  CHECK(must("JULIET@EXAMPLE.COM/Balcony").str() == "juliet@example.com/Balcony");
}

TEST_CASE("resource is OpaqueString: case preserved, NFC, spaces mapped") {
  CHECK(prep_resource("Balcony") == "Balcony");
  CHECK(prep_resource("a/b/c") == "a/b/c");
  CHECK(prep_resource("foo\xE1\x9A\x80" "bar") == "foo bar");  // OGHAM SPACE MARK -> SPACE
  CHECK(prep_resource("e\xCC\x81") == "\xC3\xA9");             // NFC
  CHECK(prep_resource("\xEF\xBC\xA1") == "\xEF\xBC\xA1");      // no width mapping
  CHECK(prep_resource("foo ") == "foo ");
  CHECK_FALSE(prep_resource(""));
  CHECK_FALSE(prep_resource(" foo"));
  auto j = must("user@example.com/room/nick@host");
  CHECK(j.resource() == "room/nick@host");
}

TEST_CASE("domainpart preparation") {
  CHECK(prep_domain("EXAMPLE.COM") == "example.com");
  CHECK(prep_domain("example.com.") == "example.com");
  CHECK(prep_domain("localhost") == "localhost");
  CHECK(prep_domain("xn--bcher-kva.example") == "b\xC3\xBC" "cher.example");
  CHECK(prep_domain("B\xC3\x9C" "CHER.example") == "b\xC3\xBC" "cher.example");
  CHECK(prep_domain("example\xE3\x80\x82" "com") == "example.com");  // ideographic full stop
  CHECK(prep_domain("\xEF\xBD\x85xample.com") == "example.com");     // fullwidth e
  CHECK(prep_domain("192.0.2.1") == "192.0.2.1");
  CHECK(prep_domain("[2001:DB8::1]") == "[2001:db8::1]");
  CHECK(prep_domain("[2001:db8:0:0:0:0:0:1]") == "[2001:db8::1]");
  CHECK_FALSE(prep_domain("[2001:db8::1"));
  CHECK_FALSE(prep_domain("[not-ip]"));
  CHECK_FALSE(prep_domain(""));
  CHECK_FALSE(prep_domain("."));
  CHECK_FALSE(prep_domain("\xE2\x98\x83.net"));  // snowman: not IDNA2008
  CHECK_FALSE(prep_domain("a/b"));
  CHECK_FALSE(prep_domain(std::string(64, 'a') + ".com"));  // DNS label limit
  CHECK(prep_domain(std::string(63, 'a') + ".com"));
  CHECK(must("juliet@EXAMPLE.com.") == must("juliet@example.com"));
}

TEST_CASE("length limits are in octets after preparation") {
  const std::string l1023(1023, 'a');
  const std::string l1024(1024, 'a');
  CHECK(prep_localpart(l1023) == l1023);
  CHECK_FALSE(prep_localpart(l1024));
  CHECK(prep_resource(l1023) == l1023);
  CHECK_FALSE(prep_resource(l1024));
  // 512 two-octet characters = 1024 octets
  std::string pi;
  for (int i = 0; i < 512; ++i) pi += "\xCF\x80";
  CHECK_FALSE(prep_localpart(pi));
  CHECK(prep_localpart(pi.substr(2)));
  CHECK(Jid::parse(l1023 + "@example.com/" + l1023));
  CHECK_FALSE(Jid::parse(l1024 + "@example.com"));
  CHECK_FALSE(Jid::parse("a@example.com/" + l1024));
  CHECK_FALSE(Jid::parse(std::string(100000, 'a')));
}

TEST_CASE("make, bare, domain_jid, with_resource") {
  auto j = Jid::make("Juliet", "Example.com", "balcony");
  REQUIRE(j);
  CHECK(j->str() == "juliet@example.com/balcony");
  CHECK(j->bare().str() == "juliet@example.com");
  CHECK(j->bare().is_bare());
  CHECK(j->domain_jid().str() == "example.com");
  CHECK(j->domain_jid().is_domain());
  auto r = j->bare().with_resource("phone");
  REQUIRE(r);
  CHECK(r->str() == "juliet@example.com/phone");
  CHECK_FALSE(j->with_resource(""));
  CHECK_FALSE(j->with_resource(" x"));
  CHECK_FALSE(Jid().with_resource("x"));
  CHECK_FALSE(Jid::make("a b", "example.com"));
  CHECK_FALSE(Jid::make("a", ""));
  CHECK(Jid::make("", "example.com")->is_domain());
  CHECK(Jid().empty());
  CHECK_FALSE(j->empty());
}

TEST_CASE("comparison, ordering and hashing") {
  auto a = must("a@example.com");
  auto b = must("b@example.com");
  CHECK(a < b);
  CHECK(a == must("A@EXAMPLE.COM"));
  std::unordered_set<Jid, JidHash> set{a, b, must("A@example.com"), must("a@example.com/r")};
  CHECK(set.size() == 3);
  CHECK(set.count(must("B@Example.Com")) == 1);
}
