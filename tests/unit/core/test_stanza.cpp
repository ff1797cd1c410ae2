#include <doctest/doctest.h>

#include "server/xml/serializer.hpp"
#include "server/xmpp/stanza.hpp"

using namespace herald;

TEST_CASE("error_reply swaps addresses, sets the condition and its type") {
  xml::Element msg("message", "jabber:client");
  msg.set_attr("from", "alice@a.com/x").set_attr("to", "bob@a.com").set_attr("id", "m1").set_attr("type", "chat");
  msg.add("body").add_text("hi");
  auto reply = xmpp::error_reply(msg, xmpp::StanzaError::service_unavailable, "nobody here");
  REQUIRE(reply);
  CHECK(reply->attr_or("to") == "alice@a.com/x");
  CHECK(reply->attr_or("from") == "bob@a.com");
  CHECK(reply->attr_or("type") == "error");
  CHECK(reply->attr_or("id") == "m1");
  const auto* err = reply->child("error", "jabber:client");
  REQUIRE(err);
  CHECK(err->attr_or("type") == "cancel");
  CHECK(err->child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"));
  CHECK(err->child_text("text", "urn:ietf:params:xml:ns:xmpp-stanzas") == "nobody here");
  CHECK(reply->child("body", "jabber:client"));  // a message keeps its body
}

TEST_CASE("errors are never answered with errors") {
  xml::Element iq("iq", "jabber:client");
  iq.set_attr("type", "error").set_attr("id", "1");
  CHECK_FALSE(xmpp::error_reply(iq, xmpp::StanzaError::bad_request));
}

TEST_CASE("iq errors drop the request payload; condition types follow RFC 6120 8.3.3") {
  xml::Element iq("iq", "jabber:client");
  iq.set_attr("type", "get").set_attr("id", "q").set_attr("from", "a@b/c");
  iq.add("query", "jabber:iq:roster");
  auto reply = xmpp::error_reply(iq, xmpp::StanzaError::bad_request);
  REQUIRE(reply);
  CHECK_FALSE(reply->child("query", "jabber:iq:roster"));
  CHECK(reply->child("error", "jabber:client")->attr_or("type") == "modify");
  CHECK(xmpp::error_type(xmpp::StanzaError::not_authorized) == "auth");
  CHECK(xmpp::error_type(xmpp::StanzaError::resource_constraint) == "wait");
  CHECK(xmpp::name(xmpp::StanzaError::feature_not_implemented) == "feature-not-implemented");
  CHECK(xmpp::name(xmpp::StreamError::unsupported_stanza_type) == "unsupported-stanza-type");
}

TEST_CASE("stream errors are well-formed and escaped") {
  auto x = xmpp::stream_error_xml(xmpp::StreamError::host_unknown, "no <such> host");
  CHECK(x == "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no &lt;such&gt; host</text></stream:error>");
}

TEST_CASE("kind_of only accepts stanzas in the content namespace") {
  CHECK(xmpp::kind_of(xml::Element("message", "jabber:client")) == xmpp::Kind::message);
  CHECK(xmpp::kind_of(xml::Element("iq", "jabber:server")) == xmpp::Kind::iq);
  CHECK(xmpp::kind_of(xml::Element("message", "urn:other")) == xmpp::Kind::other);
  CHECK(xmpp::kind_of(xml::Element("starttls", "urn:ietf:params:xml:ns:xmpp-tls")) == xmpp::Kind::other);
}
