#include <doctest/doctest.h>

#include <string>

#include "server/xml/serializer.hpp"
#include "server/xml/stream_parser.hpp"
#include "tests/unit/xml/stream_recorder.hpp"

using namespace herald::xml;
using namespace herald::xml::test;

namespace {

// Parses `stanzas` inside a stream whose default namespace is `stream_ns`.
std::vector<Element> parse_stanzas(const std::string& stanzas, std::string_view stream_ns = "jabber:client") {
  std::string input = "<stream:stream xmlns='" + std::string(stream_ns) +
                      "' xmlns:stream='http://etherx.jabber.org/streams'>" + stanzas;
  Outcome o = feed_whole(input);
  REQUIRE_MESSAGE(!o.error.has_value(), (o.error ? o.error->detail : std::string()));
  std::vector<Element> out;
  for (const Event& e : o.events) {
    if (e.kind == Event::Kind::stanza) out.push_back(e.element);
  }
  return out;
}

Element parse_one(const std::string& stanza, std::string_view stream_ns = "jabber:client") {
  std::vector<Element> v = parse_stanzas(stanza, stream_ns);
  REQUIRE(v.size() == 1);
  return v[0];
}

}  // namespace

TEST_CASE("serializer: escaping") {
  CHECK(escape_text("a & b < c > d ' \"") == "a &amp; b &lt; c &gt; d ' \"");
  CHECK(escape_attr("a & b < c > d ' \"") == "a &amp; b &lt; c &gt; d &apos; &quot;");
  CHECK(escape_text("plain \xE2\x82\xAC") == "plain \xE2\x82\xAC");
  CHECK(escape_text("") == "");
  CHECK(escape_text("]]>") == "]]&gt;");
  // Whitespace that XML parsers would otherwise normalize away.
  CHECK(escape_text("a\r\nb\tc") == "a&#13;\nb\tc");
  CHECK(escape_attr("a\r\nb\tc") == "a&#13;&#10;b&#9;c");

  Element m("message", "jabber:client");
  m.set_attr("to", "o'neil&co<\">").add("body").add_text("1 < 2 && 3 > 2");
  CHECK(serialize(m) ==
        "<message to='o&apos;neil&amp;co&lt;&quot;&gt;'><body>1 &lt; 2 &amp;&amp; 3 &gt; 2</body></message>");
}

TEST_CASE("serializer: namespaces") {
  Element iq("iq", "jabber:client");
  iq.set_attr("type", "result").set_attr("id", "1");
  Element& query = iq.add("query", "jabber:iq:roster");
  query.add("item").set_attr("jid", "a@b");  // inherits jabber:iq:roster

  SUBCASE("no xmlns where the namespace is inherited") {
    CHECK(serialize(iq) ==
          "<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>");
  }
  SUBCASE("xmlns on the root when the parent namespace differs") {
    CHECK(serialize(iq, "jabber:server") ==
          "<iq xmlns='jabber:client' type='result' id='1'><query xmlns='jabber:iq:roster'><item "
          "jid='a@b'/></query></iq>");
  }
  SUBCASE("a child in no namespace undeclares the default") {
    Element e("x", "urn:a");
    e.append(Element("y", ""));
    CHECK(serialize(e, "urn:a") == "<x><y xmlns=''/></x>");
  }
  SUBCASE("a child returning to the outer namespace is declared again") {
    Element e("x", "urn:a");
    e.add("y", "urn:b").add("z", "urn:a");
    CHECK(serialize(e, "urn:a") == "<x><y xmlns='urn:b'><z xmlns='urn:a'/></y></x>");
  }
  SUBCASE("an xmlns attribute cannot double the declaration") {
    Element e("x", "urn:a");
    e.set_attr("xmlns", "urn:other");
    CHECK(serialize(e, "") == "<x xmlns='urn:a'/>");
  }
  SUBCASE("xml:lang and kept prefix declarations are written as is") {
    Element e("message", "jabber:client");
    e.set_attr("xml:lang", "en").set_attr("xmlns:p", "urn:p");
    CHECK(serialize(e) == "<message xml:lang='en' xmlns:p='urn:p'/>");
  }
  SUBCASE("attributes in other namespaces get a generated prefix") {
    Element e("x", "urn:a");
    e.set_attr("{urn:q}one", "1")
        .set_attr("plain", "p")
        .set_attr("{urn:q}two", "2")
        .set_attr("{urn:r}three", "3");
    e.set_attr("{http://www.w3.org/XML/1998/namespace}space", "preserve");
    CHECK(serialize(e, "urn:a") ==
          "<x xmlns:h0='urn:q' h0:one='1' plain='p' h0:two='2' xmlns:h3='urn:r' h3:three='3' "
          "xml:space='preserve'/>");
    Element clash("x", "urn:a");
    clash.set_attr("xmlns:h0", "urn:taken").set_attr("{urn:q}a", "1");
    CHECK(serialize(clash, "urn:a") == "<x xmlns:h0='urn:taken' xmlns:h1='urn:q' h1:a='1'/>");
    Element declared("x", "urn:a");
    declared.set_attr("xmlns:q", "urn:q").set_attr("{urn:q}a", "1");
    CHECK(serialize(declared, "urn:a") == "<x xmlns:q='urn:q' q:a='1'/>");
  }
}

TEST_CASE("serializer: empty elements self-close, text nodes, appending") {
  CHECK(serialize(Element("presence", "jabber:client")) == "<presence/>");
  CHECK(serialize(Element::text_node("a<b")) == "a&lt;b");
  Element e("message", "jabber:client");
  e.add("body").add_text("");
  CHECK(serialize(e) == "<message><body/></message>");

  std::string out = "prefix:";
  serialize_to(out, e, "jabber:client");
  serialize_to(out, Element("r", "urn:x"), "urn:x");
  CHECK(out == "prefix:<message><body/></message><r/>");
}

TEST_CASE("serializer: parse -> serialize -> parse gives equal trees") {
  const std::string stanzas =
      "<message to='romeo@example.net' from='juliet@example.com/balcony' type='chat' xml:lang='en'>"
      "<body>Art thou not Romeo, &amp; a Montague? &lt;3 &gt; &quot;q&quot; 'a' \xE2\x98\x83</body>"
      "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>"
      "<p style='font-weight:bold'>hi <em>there</em>!</p></body></html>"
      "<x xmlns=''><y/></x>"
      "</message>"
      "<iq type='set' id='a&amp;b&apos;c&quot;d&lt;e&gt;'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
      "<publish node='n'><item id='1'><entry xmlns='urn:e' xmlns:a='urn:attr' a:kind='x&#10;y&#9;z'>"
      "line1\r\nline2\rline3<a:inner>t</a:inner></entry></item></publish></pubsub></iq>"
      "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
      "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>bad</text></stream:error>"
      "<presence><status>  spaced  \n out  </status><![CDATA[a]]>b<![CDATA[<c>]]></presence>";

  for (std::string_view stream_ns : {"jabber:client", "jabber:server"}) {
    CAPTURE(stream_ns);
    std::vector<Element> first = parse_stanzas(stanzas, stream_ns);
    REQUIRE(first.size() == 4);

    std::string written;
    for (const Element& e : first) serialize_to(written, e, stream_ns);
    std::vector<Element> second = parse_stanzas(written, stream_ns);
    REQUIRE(second.size() == first.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
      CAPTURE(written);
      CHECK(first[i] == second[i]);
    }

    // Written into a stream with another default namespace: declarations appear, trees stay equal.
    std::string other;
    for (const Element& e : first) serialize_to(other, e, "urn:elsewhere");
    std::vector<Element> third = parse_stanzas(other, "urn:elsewhere");
    REQUIRE(third.size() == first.size());
    for (std::size_t i = 0; i < first.size(); ++i) CHECK(first[i] == third[i]);
  }

  SUBCASE("what got parsed is what was meant") {
    std::vector<Element> v = parse_stanzas(stanzas);
    CHECK(v[1].attr_or("id") == "a&b'c\"d<e>");
    const Element* entry = v[1].child("pubsub", "http://jabber.org/protocol/pubsub")
                               ->child("publish", "http://jabber.org/protocol/pubsub")
                               ->child("item", "http://jabber.org/protocol/pubsub")
                               ->child("entry", "urn:e");
    REQUIRE(entry != nullptr);
    CHECK(entry->attr_or("{urn:attr}kind") == "x\ny\tz");
    CHECK(entry->text() == "line1\nline2\nline3");
    CHECK(v[0].child("x", "") != nullptr);
    CHECK(v[3].text() == "ab<c>");
  }
}

TEST_CASE("serializer: programmatic trees survive a round trip") {
  Element m("message", "jabber:client");
  m.set_attr("to", "a@b/\xE2\x82\xAC").set_attr("xml:lang", "de").set_attr("odd", "'\"&<>\t\n\r ");
  m.add("body").add_text("x\r\ny & <z> ]]> \"'");
  m.add("data", "urn:d").set_attr("{urn:meta}k", "v").add_text("payload");
  m.add_text(" tail");
  Element back = parse_one(serialize(m));
  CHECK(back == m);
}

TEST_CASE("serializer: xml:lang") {
  Element back = parse_one("<message xml:lang='en'><body xml:lang='fr'>salut</body></message>");
  CHECK(back.attr_or("xml:lang") == "en");
  CHECK(serialize(back) == "<message xml:lang='en'><body xml:lang='fr'>salut</body></message>");
}
