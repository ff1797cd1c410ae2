// xml::parse_element: stanzas Herald serialized, parsed back (server/xml/parse.hpp).
#include <doctest/doctest.h>

#include "server/xml/parse.hpp"
#include "server/xml/serializer.hpp"

using namespace herald;

TEST_CASE("a serialized stanza parses back to the same element") {
  xml::Element m("message", "jabber:client");
  m.set_attr("to", "a@x/1").set_attr("type", "chat");
  m.add("body").add_text("<hi> & 'bye'");
  m.add("delay", "urn:xmpp:delay").set_attr("stamp", "2026-01-01T00:00:00Z");
  auto parsed = xml::parse_element(xml::serialize(m));
  REQUIRE(parsed);
  CHECK(*parsed == m);
  CHECK(parsed->ns() == "jabber:client");
}

TEST_CASE("garbage, several elements, or nothing are refused") {
  CHECK_FALSE(xml::parse_element(""));
  CHECK_FALSE(xml::parse_element("<a>"));
  CHECK_FALSE(xml::parse_element("<a/><b/>"));
  CHECK_FALSE(xml::parse_element("text only"));
  CHECK_FALSE(xml::parse_element("<a></b>"));
  CHECK_FALSE(xml::parse_element("<!DOCTYPE a><a/>"));
}
