#include <doctest/doctest.h>

#include "server/xml/element.hpp"

using namespace herald::xml;

TEST_CASE("element: construction and kinds") {
  Element empty;
  CHECK_FALSE(empty.is_text());
  CHECK(empty.name().empty());
  CHECK(empty.ns().empty());
  CHECK(empty.nodes().empty());

  Element e("message", "jabber:client");
  CHECK(e.name() == "message");
  CHECK(e.ns() == "jabber:client");
  CHECK_FALSE(e.is_text());

  Element t = Element::text_node("hello");
  CHECK(t.is_text());
  CHECK(t.text_content() == "hello");
  CHECK(t.name().empty());
}

TEST_CASE("element: attributes") {
  Element e("iq", "jabber:client");
  CHECK(e.attr("id") == nullptr);
  CHECK(e.attr_or("id") == "");
  CHECK(e.attr_or("id", "none") == "none");

  e.set_attr("type", "get").set_attr("id", "1").set_attr("xml:lang", "en");
  REQUIRE(e.attr("id") != nullptr);
  CHECK(*e.attr("id") == "1");
  CHECK(e.attr_or("xml:lang") == "en");
  CHECK(e.attrs().size() == 3);

  SUBCASE("set_attr replaces in place") {
    e.set_attr("type", "set");
    CHECK(e.attr_or("type") == "set");
    CHECK(e.attrs().size() == 3);
    CHECK(e.attrs()[0].first == "type");
  }
  SUBCASE("an empty value is present, not absent") {
    e.set_attr("ver", "");
    REQUIRE(e.attr("ver") != nullptr);
    CHECK(e.attr_or("ver", "fallback") == "");
  }
  SUBCASE("remove_attr") {
    e.remove_attr("id");
    CHECK(e.attr("id") == nullptr);
    CHECK(e.attrs().size() == 2);
    e.remove_attr("missing");  // no-op
    CHECK(e.attrs().size() == 2);
  }
  SUBCASE("names are matched exactly") {
    CHECK(e.attr("lang") == nullptr);
    CHECK(e.attr("ID") == nullptr);
  }
}

TEST_CASE("element: children") {
  Element m("message", "jabber:client");
  Element& body = m.add("body");
  CHECK(body.ns() == "jabber:client");  // inherited
  body.add_text("hi");
  m.add("x", "jabber:x:oob").add("url").add_text("http://x");
  m.add_text(" tail");
  Element& appended = m.append(Element("thread", "jabber:client"));
  CHECK(appended.name() == "thread");
  appended.add_text("t1");

  REQUIRE(m.nodes().size() == 4);
  CHECK(m.child("body", "jabber:client") != nullptr);
  CHECK(m.child("body", "jabber:x:oob") == nullptr);
  CHECK(m.child("x", "jabber:x:oob")->child("url", "jabber:x:oob") != nullptr);  // ns inherited twice
  CHECK(m.child_text("body", "jabber:client") == "hi");
  CHECK(m.child_text("thread", "jabber:client") == "t1");
  CHECK(m.child_text("missing", "jabber:client") == "");
  CHECK(m.text() == " tail");
  CHECK(m.first_element() == m.child("body", "jabber:client"));

  std::vector<const Element*> els = m.elements();
  REQUIRE(els.size() == 3);
  CHECK(els[0]->name() == "body");
  CHECK(els[1]->name() == "x");
  CHECK(els[2]->name() == "thread");

  SUBCASE("mutable child lookup") {
    Element* b = m.child("body", "jabber:client");
    REQUIRE(b != nullptr);
    b->set_attr("xml:lang", "en");
    CHECK(m.child("body", "jabber:client")->attr_or("xml:lang") == "en");
  }
  SUBCASE("clear_children keeps name and attributes") {
    m.set_attr("to", "a@b");
    m.clear_children();
    CHECK(m.nodes().empty());
    CHECK(m.first_element() == nullptr);
    CHECK(m.attr_or("to") == "a@b");
    CHECK(m.name() == "message");
  }
  SUBCASE("text nodes are not elements") {
    Element only_text("body", "jabber:client");
    only_text.add_text("x");
    CHECK(only_text.first_element() == nullptr);
    CHECK(only_text.elements().empty());
    CHECK(only_text.child("", "") == nullptr);
  }
}

TEST_CASE("element: add_text merges adjacent text and skips empty text") {
  Element e("body", "jabber:client");
  e.add_text("a").add_text("b").add_text("");
  REQUIRE(e.nodes().size() == 1);
  CHECK(e.nodes()[0].text_content() == "ab");
  e.add("br");
  e.add_text("c");
  CHECK(e.nodes().size() == 3);
  CHECK(e.text() == "abc");
  Element none("x", "");
  none.add_text("");
  CHECK(none.nodes().empty());
}

TEST_CASE("element: value semantics and equality") {
  Element a("iq", "jabber:client");
  a.set_attr("id", "1").add("query", "jabber:iq:roster").add("item").set_attr("jid", "x@y");
  Element b = a;
  CHECK(a == b);
  b.child("query", "jabber:iq:roster")->child("item", "jabber:iq:roster")->set_attr("jid", "z@y");
  CHECK(a != b);  // deep copy: a unchanged
  CHECK(a.child("query", "jabber:iq:roster")->child("item", "jabber:iq:roster")->attr_or("jid") == "x@y");

  Element moved = std::move(b);
  CHECK(moved.child("query", "jabber:iq:roster") != nullptr);

  CHECK(Element("a", "u") != Element("a", "v"));
  CHECK(Element("a", "u") != Element("b", "u"));
  CHECK(Element::text_node("") != Element());
  Element c("a", "u"), d("a", "u");
  c.set_attr("x", "1").set_attr("y", "2");
  d.set_attr("x", "1").set_attr("y", "2");
  CHECK(c == d);
  d.set_attr("y", "3");
  CHECK(c != d);
}

TEST_CASE("element: rename_namespace moves a stanza between jabber:client and jabber:server") {
  Element m("message", "jabber:client");
  m.add("body").add_text("hi");
  m.add("x", "urn:example:other").add("inner", "jabber:client");
  m.rename_namespace("jabber:client", "jabber:server");
  CHECK(m.ns() == "jabber:server");
  CHECK(m.child("body", "jabber:server") != nullptr);
  CHECK(m.child("body", "jabber:server")->text() == "hi");
  const auto* x = m.child("x", "urn:example:other");
  REQUIRE(x != nullptr);  // other namespaces stay
  CHECK(x->child("inner", "jabber:server") != nullptr);  // nested default-namespace children move too
}
