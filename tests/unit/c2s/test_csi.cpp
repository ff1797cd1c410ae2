// XEP-0352 holding rules (server/c2s/csi.hpp).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "server/c2s/csi.hpp"
#include "server/xml/parse.hpp"

using namespace herald;

namespace {
std::string key(const char* xml) {
  auto e = xml::parse_element(xml);
  REQUIRE(e);
  return c2s::csi_hold_key(*e);
}
std::shared_ptr<const std::string> s(const char* t) { return std::make_shared<const std::string>(t); }
}  // namespace

TEST_CASE("presence updates are held per sender; subscriptions are not") {
  CHECK(key("<presence from='a@x/1' to='b@x/2'/>") == "p a@x/1");
  CHECK(key("<presence from='a@x/1' type='unavailable'/>") == "p a@x/1");
  CHECK(key("<presence from='a@x' type='subscribe'/>").empty());
  CHECK(key("<presence from='a@x' type='subscribed'/>").empty());
  CHECK(key("<presence from='a@x' type='probe'/>").empty());
  CHECK(key("<presence from='a@x' type='error'/>").empty());
}

TEST_CASE("only messages carrying nothing but a chat state are held") {
  CHECK(key("<message from='a@x/1' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>") == "c a@x/1");
  CHECK(key("<message from='a@x/1' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>") == "c a@x/1");
  CHECK(key("<message from='a@x/1' type='chat'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>").empty());
  CHECK(key("<message from='a@x/1' type='chat'><body>hi</body></message>").empty());
  CHECK(key("<message from='a@x/1' type='error'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>").empty());
  CHECK(key("<message from='a@x/1' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>").empty());
  CHECK(key("<message from='a@x/1'/>").empty());
  CHECK(key("<iq from='a@x/1' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>").empty());
}

TEST_CASE("a newer stanza with the same key replaces the held one; order is kept") {
  c2s::CsiBuffer b(10);
  CHECK(b.hold("p a", s("a1")));
  CHECK(b.hold("p b", s("b1")));
  CHECK(b.hold("p a", s("a2")));
  auto out = b.take();
  REQUIRE(out.size() == 2);
  CHECK(*out[0] == "b1");
  CHECK(*out[1] == "a2");
  CHECK(b.empty());
}

TEST_CASE("a full buffer refuses new keys but still collapses known ones") {
  c2s::CsiBuffer b(2);
  CHECK(b.hold("1", s("x")));
  CHECK(b.hold("2", s("y")));
  CHECK_FALSE(b.hold("3", s("z")));
  CHECK(b.hold("2", s("y2")));
  CHECK(b.size() == 2);
}
