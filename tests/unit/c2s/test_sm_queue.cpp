// XEP-0198 counters and the unacknowledged queue (server/c2s/sm_queue.hpp).
#include <doctest/doctest.h>

#include <limits>
#include <memory>
#include <string>

#include "server/c2s/sm_queue.hpp"

using herald::c2s::SmQueue;

namespace {
std::shared_ptr<const std::string> x(int n) { return std::make_shared<const std::string>("<m" + std::to_string(n) + "/>"); }
}  // namespace

TEST_CASE("acknowledging drops exactly the handled prefix") {
  SmQueue q;
  for (int i = 0; i < 5; ++i) q.sent(x(i));
  CHECK(q.sent_count() == 5);
  CHECK(q.ack(2) == SmQueue::Ack::ok);
  REQUIRE(q.size() == 3);
  CHECK(*q.items().front().xml == "<m2/>");
  CHECK(q.ack(2) == SmQueue::Ack::ok);  // repeated: nothing new
  CHECK(q.size() == 3);
  CHECK(q.ack(5) == SmQueue::Ack::ok);
  CHECK(q.empty());
  CHECK(q.acked() == 5);
}

TEST_CASE("an h above what was sent is handled-count-too-high") {
  SmQueue q;
  for (int i = 0; i < 8; ++i) q.sent(x(i));
  CHECK(q.ack(10) == SmQueue::Ack::too_high);
  CHECK(q.size() == 8);  // nothing dropped
  CHECK(q.ack(9) == SmQueue::Ack::too_high);
  CHECK(q.ack(8) == SmQueue::Ack::ok);
  CHECK(q.ack(9) == SmQueue::Ack::too_high);
}

TEST_CASE("a stale h (behind the last acknowledgement) is not an error") {
  SmQueue q;
  for (int i = 0; i < 6; ++i) q.sent(x(i));
  CHECK(q.ack(4) == SmQueue::Ack::ok);
  CHECK(q.ack(1) == SmQueue::Ack::ok);
  CHECK(q.size() == 2);
  CHECK(q.acked() == 4);
}

TEST_CASE("an h just below zero (mod 2^32) is stale, not too high") {
  SmQueue q;
  for (int i = 0; i < 3; ++i) q.sent(x(i));
  CHECK(q.ack(std::numeric_limits<std::uint32_t>::max()) == SmQueue::Ack::ok);  // one behind 0
  CHECK(q.size() == 3);
  CHECK(q.ack(3) == SmQueue::Ack::ok);
  CHECK(q.empty());
}

TEST_CASE("take() hands over everything unacknowledged in order") {
  SmQueue q;
  for (int i = 0; i < 4; ++i) q.sent(x(i));
  REQUIRE(q.ack(1) == SmQueue::Ack::ok);
  auto items = q.take();
  REQUIRE(items.size() == 3);
  CHECK(*items[0].xml == "<m1/>");
  CHECK(*items[2].xml == "<m3/>");
  CHECK(q.empty());
  CHECK(q.acked() == q.sent_count());
}
