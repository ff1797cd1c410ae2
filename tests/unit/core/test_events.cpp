#include <doctest/doctest.h>

#include "server/core/auth_throttle.hpp"
#include "server/core/events.hpp"
#include "server/core/host.hpp"
#include "server/core/session_directory.hpp"

using namespace herald;

namespace {

// Runs a coroutine to completion on a private io_context.
template <typename T>
T run(asio::io_context& io, awaitable<T> a) {
  std::optional<T> out;
  asio::co_spawn(io, [&]() -> awaitable<void> { out = co_await std::move(a); }, asio::detached);
  io.run();
  io.restart();
  return *out;
}

class FakeSession : public core::Session {
 public:
  FakeSession(std::string jid, unsigned worker) : core::Session(worker) { jid_ = *xmpp::Jid::parse(jid); }
  void deliver(std::shared_ptr<const std::string>) override {}
  void close_with(xmpp::StreamError, std::string) override {}
};

}  // namespace

TEST_CASE("hook bus runs handlers by priority until one handles") {
  core::EventBus bus;
  std::vector<int> order;
  auto handler = [&](int tag, core::Result r) {
    return [&order, tag, r](core::StanzaEvent&) -> awaitable<core::Result> {
      order.push_back(tag);
      co_return r;
    };
  };
  bus.on("message/bare", 0, handler(0, core::Result::pass));
  bus.on("message/bare", 10, handler(10, core::Result::pass));
  bus.on("message/bare", 5, handler(5, core::Result::handled));
  bus.on("message/bare", 5, handler(6, core::Result::pass));  // same priority: after the first
  CHECK(bus.has("message/bare"));
  CHECK_FALSE(bus.has("message/full"));

  xml::Element stanza("message", "jabber:client");
  asio::io_context io;
  core::Host host("example.com");
  core::StanzaEvent ev{host, stanza, {}, {}, nullptr};
  CHECK(run(io, bus.fire("message/bare", ev)) == core::Result::handled);
  CHECK(order == std::vector<int>{10, 5});
  order.clear();
  CHECK(run(io, bus.fire("message/full", ev)) == core::Result::pass);
  CHECK(order.empty());
}

TEST_CASE("session directory: bind, replace, unbind only the registered session") {
  core::SessionDirectory dir(4);
  auto a1 = std::make_shared<FakeSession>("alice@example.com/phone", 0);
  auto a2 = std::make_shared<FakeSession>("alice@example.com/laptop", 1);
  auto a1b = std::make_shared<FakeSession>("alice@example.com/phone", 1);
  CHECK(dir.bind(a1) == nullptr);
  CHECK(dir.bind(a2) == nullptr);
  CHECK(dir.size() == 2);
  CHECK(dir.resources(*xmpp::Jid::parse("alice@example.com")).size() == 2);
  CHECK(dir.bind(a1b) == a1);  // same resource: the old session is displaced
  CHECK(dir.find(*xmpp::Jid::parse("alice@example.com/phone")) == a1b);
  dir.unbind(*a1);  // the displaced session's cleanup must not remove its successor
  CHECK(dir.find(*xmpp::Jid::parse("alice@example.com/phone")) == a1b);
  dir.unbind(*a1b);
  dir.unbind(*a2);
  CHECK(dir.size() == 0);
  CHECK(dir.resources(*xmpp::Jid::parse("alice@example.com")).empty());
}

TEST_CASE("auth throttle blocks after the limit within the window, then forgets") {
  core::AuthThrottle t(3, std::chrono::seconds(60));
  auto now = core::AuthThrottle::Clock::now();
  CHECK_FALSE(t.blocked("10.0.0.1", now));
  t.record_failure("10.0.0.1", now);
  t.record_failure("10.0.0.1", now);
  CHECK_FALSE(t.blocked("10.0.0.1", now));
  t.record_failure("10.0.0.1", now + std::chrono::seconds(1));
  CHECK(t.blocked("10.0.0.1", now + std::chrono::seconds(2)));
  CHECK_FALSE(t.blocked("10.0.0.2", now + std::chrono::seconds(2)));
  CHECK_FALSE(t.blocked("10.0.0.1", now + std::chrono::seconds(61)));
}
