#include <doctest/doctest.h>

#include <random>
#include <stdexcept>
#include <string>

#include "server/xml/serializer.hpp"
#include "server/xml/stream_parser.hpp"
#include "tests/unit/xml/stream_recorder.hpp"

using namespace herald::xml;
using namespace herald::xml::test;

namespace {

// A realistic c2s stream: XML declaration, header with namespace declarations, keepalive
// whitespace, CRLF line ends, predefined and character references, multi-byte UTF-8
// (so splits land inside characters), CDATA, prefixed elements, namespaced and xml:lang
// attributes, nested and empty elements, and the closing tag.
const std::string kRealistic =
    "<?xml version='1.0' encoding='UTF-8'?>\r\n"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='example.com' from='juliet@example.com' version='1.0' xml:lang='en' id='s1'>\n  \r\n"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "</stream:features>\n"
    "<message to='romeo@example.net/orchard' type='chat' id='m1' xml:lang='fr'>"
    "<body>Wherefore art thou, Romeo? &amp; &lt;tag&gt; &quot;q&quot; &apos;a&apos; &#x263A; &#65;"
    " \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80</body>\r\n"
    "<thread>t&#x31;</thread><x xmlns='jabber:x:oob'><url>http://a/?b=1&amp;c=2</url></x>"
    "<![CDATA[<not-a-tag> & stuff]]>"
    "</message>   \t\n"
    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''/></iq>"
    "<presence><show>away</show><status xml:lang='de'>weg \xE2\x98\x83</status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>"
    "<p:item xmlns:p='urn:example:p' xmlns:q='urn:example:q' q:attr=\"a'b\" plain='x&#x9;y'>"
    "<p:sub/>mixed<q:other>text</q:other>tail</p:item>"
    " "
    "</stream:stream>";

bool same_events(const Outcome& a, const Outcome& b) { return a == b; }

}  // namespace

TEST_CASE("stream parser: realistic stream parsed whole") {
  Outcome whole = feed_whole(kRealistic);
  REQUIRE(whole.status == Status::ok);
  REQUIRE_FALSE(whole.error.has_value());
  REQUIRE(whole.events.size() == 7);

  const Element& header = whole.events[0].element;
  CHECK(whole.events[0].kind == Event::Kind::open);
  CHECK(header.name() == "stream");
  CHECK(header.ns() == kStreamsNs);
  CHECK(header.attr_or("xmlns") == "jabber:client");
  CHECK(header.attr_or("xmlns:stream") == kStreamsNs);
  CHECK(header.attr_or("to") == "example.com");
  CHECK(header.attr_or("from") == "juliet@example.com");
  CHECK(header.attr_or("version") == "1.0");
  CHECK(header.attr_or("xml:lang") == "en");
  CHECK(header.attr_or("id") == "s1");
  CHECK(header.nodes().empty());

  const Element& features = whole.events[1].element;
  CHECK(features.name() == "features");
  CHECK(features.ns() == kStreamsNs);
  CHECK(features.attrs().empty());  // the prefix was declared on the header, not here
  REQUIRE(features.child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") != nullptr);
  CHECK(features.child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
            ->child("required", "urn:ietf:params:xml:ns:xmpp-tls") != nullptr);

  const Element& msg = whole.events[2].element;
  CHECK(msg.name() == "message");
  CHECK(msg.ns() == "jabber:client");
  CHECK(msg.attr("xmlns") == nullptr);  // default namespace of a stanza is its ns()
  CHECK(msg.attr_or("xml:lang") == "fr");
  CHECK(msg.child_text("body", "jabber:client") ==
        "Wherefore art thou, Romeo? & <tag> \"q\" 'a' \xE2\x98\xBA A \xC3\xA9t\xC3\xA9 \xE2\x82\xAC "
        "\xF0\x9F\x98\x80");
  CHECK(msg.child_text("thread", "jabber:client") == "t1");
  CHECK(msg.child("x", "jabber:x:oob")->child_text("url", "jabber:x:oob") == "http://a/?b=1&c=2");
  // CRLF normalized to LF; text fragments merged into one node.
  REQUIRE(msg.nodes().size() == 5);
  CHECK(msg.nodes()[1].is_text());
  CHECK(msg.nodes()[1].text_content() == "\n");
  CHECK(msg.nodes()[4].text_content() == "<not-a-tag> & stuff");

  const Element& iq = whole.events[3].element;
  CHECK(iq.name() == "iq");
  REQUIRE(iq.child("query", "jabber:iq:roster") != nullptr);
  CHECK(iq.child("query", "jabber:iq:roster")->attr_or("ver", "missing") == "");

  const Element& pres = whole.events[4].element;
  CHECK(pres.child("status", "jabber:client")->attr_or("xml:lang") == "de");

  const Element& item = whole.events[5].element;
  CHECK(item.name() == "item");
  CHECK(item.ns() == "urn:example:p");
  CHECK(item.attr_or("{urn:example:q}attr") == "a'b");
  CHECK(item.attr_or("plain") == "x\ty");
  // Declarations inside a stanza are not attributes: names and ns() carry the meaning.
  CHECK(item.attrs().size() == 2);
  REQUIRE(item.nodes().size() == 4);
  CHECK(item.nodes()[0].name() == "sub");
  CHECK(item.nodes()[0].ns() == "urn:example:p");
  CHECK(item.nodes()[1].text_content() == "mixed");
  CHECK(item.nodes()[2].ns() == "urn:example:q");
  CHECK(item.text() == "mixedtail");

  CHECK(whole.events[6].kind == Event::Kind::close);
}

TEST_CASE("stream parser: every split gives the same events") {
  const Outcome whole = feed_whole(kRealistic);
  REQUIRE(whole.events.size() == 7);

  SUBCASE("two pieces, split at every byte boundary") {
    for (std::size_t at = 0; at <= kRealistic.size(); ++at) {
      CAPTURE(at);
      REQUIRE(same_events(feed_split(kRealistic, at), whole));
    }
  }
  SUBCASE("byte by byte") { CHECK(same_events(feed_bytewise(kRealistic), whole)); }
  SUBCASE("random chunkings") {
    std::mt19937 rng(20240601);
    for (int round = 0; round < 200; ++round) {
      std::vector<std::size_t> sizes;
      for (std::size_t total = 0; total < kRealistic.size();) {
        std::size_t s = 1 + rng() % 40;
        sizes.push_back(s);
        total += s;
      }
      REQUIRE(same_events(feed_chunks(kRealistic, sizes), whole));
    }
  }
  SUBCASE("errors are also split-independent") {
    Limits small;
    small.max_stanza_bytes = 300;
    const std::string h(kC2sHeader);
    for (const std::string& bad : {
             h + "<message><body>a\xC3\x28</body></message>",
             h + "<message/><message><!-- c --></message>",
             h + "<message/> text <message/>",
             h + "<message><body>&undefined;</body></message>",
             h + "<message><body>" + std::string(400, 'a') + "</body></message>",
             h + "<message/></stream:stream><message/>",
         }) {
      CAPTURE(bad);
      const Outcome bad_whole = feed_whole(bad, small);
      REQUIRE(bad_whole.error.has_value());
      for (std::size_t at = 0; at <= bad.size(); ++at) {
        CAPTURE(at);
        REQUIRE(same_events(feed_split(bad, at, small), bad_whole));
      }
      REQUIRE(same_events(feed_bytewise(bad, small), bad_whole));
    }
  }
}

TEST_CASE("stream parser: mutated streams (fuzz) behave the same however they are split") {
  // Random corruptions of a valid stream: whatever the outcome, it must not depend on
  // how the bytes were chunked, and nothing may crash or leak (run under sanitizers).
  std::mt19937 rng(7);
  const std::string alphabet = "<>/&;'\"=: ![]-?x\xC3\xA9\x80\xFF\x00\n";
  Limits limits;
  limits.max_stanza_bytes = 400;
  limits.max_depth = 4;
  limits.max_attributes = 6;
  int errors = 0;
  for (int round = 0; round < 400; ++round) {
    std::string input = kRealistic;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      std::size_t pos = rng() % input.size();
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: input[pos] = c; break;
        case 1: input.insert(pos, 1, c); break;
        default: input.erase(pos, 1); break;
      }
    }
    CAPTURE(input);
    const Outcome whole = feed_whole(input, limits);
    if (whole.error) ++errors;
    REQUIRE(same_events(feed_bytewise(input, limits), whole));
    std::vector<std::size_t> sizes;
    for (std::size_t total = 0; total < input.size();) {
      sizes.push_back(1 + rng() % 64);
      total += sizes.back();
    }
    REQUIRE(same_events(feed_chunks(input, sizes, limits), whole));
  }
  CHECK(errors > 100);  // the corruptions did reach the error paths
}

TEST_CASE("stream parser: events are delivered as soon as their last byte arrives") {
  // A stanza must not wait for further input (no reparse deferral).
  Recorder rec;
  StreamParser parser(rec, {});
  rec.parser = &parser;
  std::string s = std::string(kC2sHeader);
  CHECK(parser.feed(s) == Status::ok);
  REQUIRE(rec.events.size() == 1);
  std::string big = "<message><body>" + std::string(100000, 'x') + "</body></message>";
  CHECK(parser.feed(std::string_view(big).substr(0, big.size() - 1)) == Status::ok);
  CHECK(rec.events.size() == 1);
  CHECK(parser.feed(">") == Status::ok);
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[1].element.child_text("body", "jabber:client").size() == 100000);
}

TEST_CASE("stream parser: restricted XML") {
  auto expect_restricted = [](const std::string& input, std::size_t events_before) {
    CAPTURE(input);
    for (const Outcome& o : {feed_whole(input), feed_bytewise(input)}) {
      REQUIRE(o.error.has_value());
      CHECK(o.status == Status::error);
      CHECK(o.error->kind == ErrorKind::restricted_xml);
      CHECK(o.events.size() == events_before);
    }
  };
  const std::string h(kC2sHeader);

  SUBCASE("doctype") {
    expect_restricted("<?xml version='1.0'?><!DOCTYPE stream:stream>" + h, 0);
    expect_restricted("<!DOCTYPE stream SYSTEM 'http://example.com/x.dtd'>" + h, 0);
  }
  SUBCASE("internal subset") {
    expect_restricted("<!DOCTYPE s [<!ELEMENT s ANY><!ATTLIST s a CDATA #IMPLIED>]>" + h, 0);
  }
  SUBCASE("entity declaration") { expect_restricted("<!DOCTYPE s [<!ENTITY e 'boom'>]><s>&e;</s>", 0); }
  SUBCASE("comment before the header (depth 0)") {
    expect_restricted("<?xml version='1.0'?><!-- hi -->" + h, 0);
  }
  SUBCASE("comment between stanzas (depth 1)") {
    expect_restricted(h + "<message/><!-- hi --><message/>", 2);
  }
  SUBCASE("comment inside a stanza (depth 2)") { expect_restricted(h + "<message><!-- hi --></message>", 1); }
  SUBCASE("comment deep inside a stanza") {
    expect_restricted(h + "<message><body><!-- hi --></body></message>", 1);
  }
  SUBCASE("processing instruction") {
    expect_restricted("<?xml version='1.0'?><?xml-stylesheet href='a'?>" + h, 0);
    expect_restricted(h + "<?foo bar?>", 1);
    expect_restricted(h + "<message><?foo bar?></message>", 1);
  }
  SUBCASE("the XML declaration itself is allowed") {
    Outcome o =
        feed_whole("<?xml version='1.0' encoding='utf-8'?>" + h.substr(h.find("<stream")) + "<message/>");
    CHECK_FALSE(o.error.has_value());
    CHECK(o.events.size() == 2);
  }
  SUBCASE("undefined entity reference is not well-formed") {
    Outcome o = feed_whole(h + "<message><body>&nbsp;</body></message>");
    REQUIRE(o.error.has_value());
    CHECK(o.error->kind == ErrorKind::not_well_formed);
    CHECK(o.events.size() == 1);
  }
}

TEST_CASE("stream parser: billion laughs is rejected at the DOCTYPE") {
  std::string laughs = "<?xml version='1.0'?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n";
  for (int i = 1; i <= 9; ++i) {
    laughs += " <!ENTITY lol" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) laughs += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    laughs += "\">\n";
  }
  laughs += "]>\n<lolz>&lol9;</lolz>";
  const std::size_t first_entity = laughs.find("<!ENTITY");

  Outcome bytewise = feed_bytewise(laughs);
  REQUIRE(bytewise.error.has_value());
  CHECK(bytewise.error->kind == ErrorKind::restricted_xml);
  CHECK(bytewise.events.empty());
  // Refused before a single entity declaration was read.
  CHECK(bytewise.failed_at <= first_entity);

  Outcome whole = feed_whole(laughs);
  REQUIRE(whole.error.has_value());
  CHECK(whole.error->kind == ErrorKind::restricted_xml);
}

TEST_CASE("stream parser: stanza size limit") {
  Limits limits;
  limits.max_stanza_bytes = 1024;
  const std::string h(kC2sHeader);

  SUBCASE("a stanza exactly at the limit passes, one byte more fails at that byte") {
    const std::string open = "<message><body>";
    const std::string close = "</body></message>";
    std::string fits = open + std::string(1024 - open.size() - close.size(), 'a') + close;
    REQUIRE(fits.size() == 1024);
    Outcome ok = feed_bytewise(h + fits + fits, limits);
    CHECK_FALSE(ok.error.has_value());
    CHECK(ok.events.size() == 3);

    std::string over = open + std::string(1025 - open.size() - close.size(), 'a') + close;
    Outcome bad = feed_bytewise(h + over, limits);
    REQUIRE(bad.error.has_value());
    CHECK(bad.error->kind == ErrorKind::policy_violation);
    CHECK(bad.events.size() == 1);
    // The byte that would make the stanza 1025 bytes long is the one refused.
    CHECK(bad.failed_at == h.size() + 1025);
  }

  SUBCASE("limit hit mid-stanza while the stanza is incomplete") {
    Recorder rec;
    StreamParser parser(rec, limits);
    CHECK(parser.feed(h) == Status::ok);
    CHECK(parser.feed("<message><body>") == Status::ok);
    Status st = Status::ok;
    std::size_t fed = 0;
    while (st == Status::ok && fed < 100000) {
      st = parser.feed(std::string(100, 'a'));
      fed += 100;
    }
    CHECK(st == Status::error);
    CHECK(fed <= 1024 + 100);
    REQUIRE(parser.error().has_value());
    CHECK(parser.error()->kind == ErrorKind::policy_violation);
  }

  SUBCASE("a single huge start tag is cut at the limit, before Expat sees the rest") {
    // If the parser handed Expat the whole chunk, the stray '<' inside the attribute value
    // would be reported as not-well-formed; being cut at the limit, it is never seen.
    std::string tag = "<message to='" + std::string(5000, 'a') + "<" + std::string(5000, 'b') + "'/>";
    Outcome o = feed_whole(h + tag, limits);
    REQUIRE(o.error.has_value());
    CHECK(o.error->kind == ErrorKind::policy_violation);
    CHECK(o.events.size() == 1);

    Outcome bytewise = feed_bytewise(h + tag, limits);
    REQUIRE(bytewise.error.has_value());
    CHECK(bytewise.error->kind == ErrorKind::policy_violation);
    CHECK(bytewise.failed_at == h.size() + 1025);
  }

  SUBCASE("huge text at depth 2 is cut the same way") {
    std::string st = "<message><body>" + std::string(3000, 'a') + "\xC3\x28" + "</body></message>";
    Outcome o = feed_whole(h + st, limits);
    REQUIRE(o.error.has_value());
    CHECK(o.error->kind == ErrorKind::policy_violation);
  }

  SUBCASE("many small stanzas in one chunk are not mistaken for one big one") {
    std::string many = h;
    for (int i = 0; i < 500; ++i)
      many += "<message id='" + std::to_string(i) + "'><body>hi</body></message> ";
    Outcome o = feed_whole(many, limits);
    CHECK_FALSE(o.error.has_value());
    CHECK(o.events.size() == 501);
  }

  SUBCASE("keepalive whitespace does not count against the next stanza") {
    std::string s = h;
    for (int i = 0; i < 50; ++i) s += std::string(100, ' ') + "\n";
    s += "<message/>";
    for (int i = 0; i < 50; ++i) s += " \t\r\n" + std::string(100, ' ');
    s += "<message/>";
    CHECK_FALSE(feed_whole(s, limits).error.has_value());
    Outcome b = feed_bytewise(s, limits);
    CHECK_FALSE(b.error.has_value());
    CHECK(b.events.size() == 3);
  }

  SUBCASE("the stream header is limited too") {
    std::string header =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
        std::string(5000, 'x') + "'>";
    Outcome o = feed_whole(header, limits);
    REQUIRE(o.error.has_value());
    CHECK(o.error->kind == ErrorKind::policy_violation);
    CHECK(o.events.empty());
  }

  SUBCASE("set_limits raises the limit for later stanzas") {
    Recorder rec;
    StreamParser parser(rec, limits);
    std::string big = "<message><body>" + std::string(4000, 'a') + "</body></message>";
    CHECK(parser.feed(h) == Status::ok);
    Limits raised = limits;
    raised.max_stanza_bytes = 8192;
    parser.set_limits(raised);
    CHECK(parser.feed(big) == Status::ok);
    CHECK(rec.events.size() == 2);
    parser.set_limits(limits);
    CHECK(parser.feed(big) == Status::error);
    CHECK(parser.error()->kind == ErrorKind::policy_violation);
  }
}

TEST_CASE("stream parser: depth and attribute limits") {
  Limits limits;
  limits.max_depth = 3;
  limits.max_attributes = 4;
  const std::string h(kC2sHeader);

  SUBCASE("depth") {
    Outcome ok = feed_whole(h + "<a><b><c/></b></a>", limits);
    CHECK_FALSE(ok.error.has_value());
    CHECK(ok.events.size() == 2);
    Outcome bad = feed_whole(h + "<a><b><c><d/></c></b></a>", limits);
    REQUIRE(bad.error.has_value());
    CHECK(bad.error->kind == ErrorKind::policy_violation);
    CHECK(bad.events.size() == 1);
  }
  SUBCASE("default depth limit stops deep nesting") {
    std::string deep = h;
    for (int i = 0; i < 1000; ++i) deep += "<a>";
    Outcome o = feed_whole(deep);
    REQUIRE(o.error.has_value());
    CHECK(o.error->kind == ErrorKind::policy_violation);
  }
  SUBCASE("attributes") {
    Outcome ok = feed_whole(h + "<a w='1' x='2' y='3' z='4'/>", limits);
    CHECK_FALSE(ok.error.has_value());
    CHECK(ok.events.size() == 2);
    Outcome bad = feed_whole(h + "<a v='0' w='1' x='2' y='3' z='4'/>", limits);
    REQUIRE(bad.error.has_value());
    CHECK(bad.error->kind == ErrorKind::policy_violation);
    CHECK(bad.events.size() == 1);
  }
  SUBCASE("namespace declarations count as attributes") {
    Outcome bad = feed_whole(h + "<a xmlns:p='u:1' xmlns:q='u:2' xmlns:r='u:3' x='2' y='3'/>", limits);
    REQUIRE(bad.error.has_value());
    CHECK(bad.error->kind == ErrorKind::policy_violation);
  }
  SUBCASE("the header is subject to the attribute limit") {
    Outcome bad =
        feed_whole(std::string(kC2sHeader).replace(kC2sHeader.size() - 1, 1, " a='1' b='2' c='3'>"), limits);
    REQUIRE(bad.error.has_value());
    CHECK(bad.error->kind == ErrorKind::policy_violation);
    CHECK(bad.events.empty());
  }
}

TEST_CASE("stream parser: malformed input") {
  const std::string h(kC2sHeader);
  auto expect = [](const std::string& input, ErrorKind kind, std::size_t events_before) {
    CAPTURE(input);
    for (const Outcome& o : {feed_whole(input), feed_bytewise(input)}) {
      REQUIRE(o.error.has_value());
      CHECK(o.status == Status::error);
      CHECK(o.error->kind == kind);
      CHECK_FALSE(o.error->detail.empty());
      CHECK(o.events.size() == events_before);
    }
  };

  SUBCASE("invalid UTF-8") {
    expect(h + "<message><body>\xC3\x28</body></message>", ErrorKind::not_well_formed, 1);
    expect(h + "<message><body>\xC0\xAF</body></message>", ErrorKind::not_well_formed, 1);
    expect(h + "<message><body>\xED\xA0\x80</body></message>", ErrorKind::not_well_formed, 1);
    expect(h + "<message to='\xC0\xAF'/>", ErrorKind::not_well_formed, 1);
    expect(h + "<message><body>\xFF</body></message>", ErrorKind::not_well_formed, 1);
  }
  SUBCASE("non-UTF-8 encoding declaration") {
    expect("<?xml version='1.0' encoding='ISO-8859-1'?>" + h.substr(h.find("<stream")),
           ErrorKind::unsupported_encoding, 0);
    expect("<?xml version='1.0' encoding='UTF-16'?>" + h.substr(h.find("<stream")),
           ErrorKind::unsupported_encoding, 0);
  }
  SUBCASE("mismatched tags") {
    expect(h + "<message><body></message></body>", ErrorKind::not_well_formed, 1);
  }
  SUBCASE("unbound prefix") { expect(h + "<foo:message/>", ErrorKind::not_well_formed, 1); }
  SUBCASE("duplicate attribute") { expect(h + "<message to='a' to='b'/>", ErrorKind::not_well_formed, 1); }
  SUBCASE("character data between stanzas") {
    expect(h + "hello<message/>", ErrorKind::not_well_formed, 1);
    expect(h + "<message/>  x  <message/>", ErrorKind::not_well_formed, 2);
    expect(h + "<message/>&amp;", ErrorKind::not_well_formed, 2);
  }
  SUBCASE("error detail names Expat's message and position") {
    Outcome o = feed_whole(h + "\n<message><body></message>");
    REQUIRE(o.error.has_value());
    CHECK(o.error->detail.find("mismatched tag") != std::string::npos);
    CHECK(o.error->detail.find("line 2") != std::string::npos);
  }
}

TEST_CASE("stream parser: whitespace keepalives") {
  Recorder rec;
  StreamParser parser(rec, {});
  CHECK(parser.feed(kC2sHeader) == Status::ok);
  CHECK(parser.feed(" ") == Status::ok);
  CHECK(parser.feed("\n") == Status::ok);
  CHECK(parser.feed("\r\n\t ") == Status::ok);
  CHECK(parser.feed("<message/>") == Status::ok);
  CHECK(parser.feed("   ") == Status::ok);
  CHECK(parser.feed("") == Status::ok);
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[1].element.nodes().empty());
  CHECK_FALSE(parser.error().has_value());
}

TEST_CASE("stream parser: stream close") {
  const std::string h(kC2sHeader);
  SUBCASE("close is reported, whitespace after it is fine") {
    Recorder rec;
    StreamParser parser(rec, {});
    CHECK(parser.feed(h + "<message/></stream:stream>") == Status::ok);
    REQUIRE(rec.events.size() == 3);
    CHECK(rec.events[2].kind == Event::Kind::close);
    CHECK(parser.feed(" \r\n\t") == Status::ok);
    CHECK_FALSE(parser.error().has_value());
  }
  SUBCASE("anything else after close is not well-formed") {
    for (std::string after : {"<message/>", "x", "<!-- c -->", "<?pi x?>", "&amp;"}) {
      CAPTURE(after);
      for (bool same_chunk : {false, true}) {
        Recorder rec;
        StreamParser parser(rec, {});
        Status st;
        if (same_chunk) {
          st = parser.feed(h + "</stream:stream> " + after);
        } else {
          CHECK(parser.feed(h + "</stream:stream>") == Status::ok);
          st = parser.feed(after);
        }
        CHECK(st == Status::error);
        REQUIRE(parser.error().has_value());
        CHECK(parser.error()->kind == ErrorKind::not_well_formed);
        CHECK(rec.events.size() == 2);
      }
    }
  }
  SUBCASE("a dead parser stays dead and silent") {
    Recorder rec;
    StreamParser parser(rec, {});
    CHECK(parser.feed(h + "<a><!-- x --></a>") == Status::error);
    std::size_t n = rec.events.size();
    Error first = *parser.error();
    CHECK(parser.feed("<message/>") == Status::error);
    CHECK(parser.resume() == Status::error);
    CHECK(rec.events.size() == n);
    CHECK(parser.error()->kind == first.kind);
    CHECK(parser.error()->detail == first.detail);
  }
}

TEST_CASE("stream parser: suspend and resume") {
  const std::string h(kC2sHeader);
  const std::string tail =
      "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message id='after'/><iq id='later'/>";

  auto suspend_on_starttls = [](StreamParser& p, const Event& e) {
    if (e.kind == Event::Kind::stanza && e.element.name() == "starttls") p.suspend();
  };

  SUBCASE("events after the suspending one wait for resume") {
    Recorder rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    rec.after_event = suspend_on_starttls;
    CHECK(parser.feed(h + tail) == Status::suspended);
    REQUIRE(rec.events.size() == 2);
    CHECK(rec.events[1].element.name() == "starttls");
    CHECK(parser.resume() == Status::ok);
    REQUIRE(rec.events.size() == 4);
    CHECK(rec.events[2].element.attr_or("id") == "after");
    CHECK(rec.events[3].element.attr_or("id") == "later");
    CHECK(parser.resume() == Status::ok);  // nothing suspended: no-op
    CHECK(rec.events.size() == 4);
  }

  SUBCASE("resume gives the same events as an uninterrupted parse, at every split") {
    const std::string input = h + tail + "<message><body>x</body></message></stream:stream>";
    const Outcome whole = feed_whole(input);
    for (std::size_t at = 0; at <= input.size(); ++at) {
      CAPTURE(at);
      Recorder rec;
      StreamParser parser(rec, {});
      rec.parser = &parser;
      rec.after_event = suspend_on_starttls;
      int suspensions = 0;
      for (std::string_view piece :
           {std::string_view(input).substr(0, at), std::string_view(input).substr(at)}) {
        Status st = parser.feed(piece);
        while (st == Status::suspended) {
          ++suspensions;
          REQUIRE(rec.events.back().element.name() == "starttls");
          st = parser.resume();
        }
        REQUIRE(st == Status::ok);
      }
      CHECK(suspensions == 1);
      REQUIRE(rec.events == whole.events);
    }
  }

  SUBCASE("feed while suspended queues behind the kept bytes") {
    Recorder rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    rec.after_event = suspend_on_starttls;
    CHECK(parser.feed(h + tail.substr(0, tail.size() - 5)) == Status::suspended);
    CHECK(parser.feed(tail.substr(tail.size() - 5)) == Status::suspended);
    CHECK(rec.events.size() == 2);
    CHECK(parser.resume() == Status::ok);
    CHECK(rec.events.size() == 4);
  }

  SUBCASE("destroying a suspended parser is safe and discards the rest") {
    Recorder rec;
    {
      StreamParser parser(rec, {});
      rec.parser = &parser;
      rec.after_event = suspend_on_starttls;
      CHECK(parser.feed(h + tail + std::string(10000, ' ')) == Status::suspended);
    }
    rec.parser = nullptr;
    CHECK(rec.events.size() == 2);
  }

  SUBCASE("suspend in on_stream_open holds back even the close of a self-closing header") {
    Recorder rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    rec.after_event = [](StreamParser& p, const Event& e) {
      if (e.kind == Event::Kind::open) p.suspend();
    };
    CHECK(parser.feed(
              "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>") ==
          Status::suspended);
    CHECK(rec.events.size() == 1);
    CHECK(parser.resume() == Status::ok);
    REQUIRE(rec.events.size() == 2);
    CHECK(rec.events[1].kind == Event::Kind::close);
  }

  SUBCASE("suspend outside a callback does nothing") {
    Recorder rec;
    StreamParser parser(rec, {});
    parser.suspend();
    CHECK(parser.feed(h + "<message/>") == Status::ok);
    CHECK(rec.events.size() == 2);
  }

  SUBCASE("suspending on every stanza") {
    Recorder rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    rec.after_event = [](StreamParser& p, const Event&) { p.suspend(); };
    Status st = parser.feed(h + "<a/><b/><c/></stream:stream>");
    std::size_t resumes = 0;
    while (st == Status::suspended) {
      CHECK(rec.events.size() == resumes + 1);
      st = parser.resume();
      ++resumes;
    }
    CHECK(st == Status::ok);
    CHECK(resumes == 5);
    CHECK(rec.events.size() == 5);
  }
}

TEST_CASE("stream parser: handler exceptions and misuse") {
  const std::string h(kC2sHeader);
  SUBCASE("an exception from a handler propagates and kills the parser") {
    Recorder rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    rec.after_event = [](StreamParser&, const Event& e) {
      if (e.kind == Event::Kind::stanza) throw std::runtime_error("boom");
    };
    CHECK_THROWS_AS(parser.feed(h + "<message/><message/>"), std::runtime_error);
    CHECK(rec.events.size() == 2);
    REQUIRE(parser.error().has_value());
    CHECK(parser.feed("<message/>") == Status::error);
    CHECK(rec.events.size() == 2);
  }
  SUBCASE("feeding from inside a callback is refused") {
    Recorder rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    Status inner = Status::ok;
    rec.after_event = [&](StreamParser& p, const Event& e) {
      if (e.kind == Event::Kind::stanza) inner = p.feed("<x/>");
    };
    CHECK(parser.feed(h + "<message/><message/>") == Status::error);
    CHECK(inner == Status::error);
    CHECK(rec.events.size() == 2);
  }
}

TEST_CASE("stream parser: header namespace declarations and attributes") {
  Outcome o = feed_whole(
      "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' "
      "xmlns:db='jabber:server:dialback' from='a.example' to='b.example' version='1.0' xml:lang='en'>"
      "<db:result from='a.example' to='b.example'>key</db:result>");
  REQUIRE_FALSE(o.error.has_value());
  REQUIRE(o.events.size() == 2);
  const Element& header = o.events[0].element;
  CHECK(header.name() == "stream");
  CHECK(header.ns() == kStreamsNs);
  CHECK(header.attr_or("xmlns") == "jabber:server");
  CHECK(header.attr_or("xmlns:stream") == kStreamsNs);
  CHECK(header.attr_or("xmlns:db") == "jabber:server:dialback");
  CHECK(header.attr_or("from") == "a.example");
  CHECK(header.attr_or("to") == "b.example");
  CHECK(header.attr_or("version") == "1.0");
  CHECK(header.attr_or("xml:lang") == "en");
  CHECK(header.attrs().size() == 7);

  const Element& result = o.events[1].element;
  CHECK(result.name() == "result");
  CHECK(result.ns() == "jabber:server:dialback");
  CHECK(result.text() == "key");
  CHECK(serialize(result, "jabber:server") ==
        "<result xmlns='jabber:server:dialback' from='a.example' to='b.example'>key</result>");

  SUBCASE("a header without a default namespace has no xmlns attribute") {
    Outcome p = feed_whole("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>");
    REQUIRE(p.events.size() == 1);
    CHECK(p.events[0].element.attr("xmlns") == nullptr);
  }
}
