#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "federation/dns/srv.hpp"

using herald::federation::dns::order_srv;
using herald::federation::dns::Random;
using herald::federation::dns::srv_order;
using herald::federation::dns::srv_says_no_service;
using herald::federation::dns::SrvRecord;

namespace {

Random seeded(std::uint32_t seed) {
  auto engine = std::make_shared<std::mt19937>(seed);
  return [engine](std::uint32_t bound) {
    return std::uniform_int_distribution<std::uint32_t>(0, bound)(*engine);
  };
}

Random constant(std::uint32_t value) {
  return [value](std::uint32_t) { return value; };
}

std::vector<std::string> targets(const std::vector<SrvRecord>& records) {
  std::vector<std::string> out;
  for (const SrvRecord& r : records) out.push_back(r.target);
  return out;
}

}  // namespace

TEST_CASE("srv order: priorities ascending, every record exactly once") {
  std::mt19937 gen(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<SrvRecord> records;
    const int n = static_cast<int>(gen() % 12);
    for (int i = 0; i < n; ++i) {
      records.push_back(SrvRecord{static_cast<std::uint16_t>(gen() % 4), static_cast<std::uint16_t>(gen() % 3 * 50),
                                  static_cast<std::uint16_t>(5000 + i), "h" + std::to_string(i)});
    }
    std::vector<SrvRecord> ordered = order_srv(records, seeded(static_cast<std::uint32_t>(round)));
    REQUIRE(ordered.size() == records.size());
    for (std::size_t i = 1; i < ordered.size(); ++i) CHECK(ordered[i - 1].priority <= ordered[i].priority);
    std::vector<std::string> a = targets(records), b = targets(ordered);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    CHECK(a == b);
  }
  CHECK(order_srv({}, seeded(1)).empty());
}

TEST_CASE("srv order: a lower priority number always comes first, whatever the weights") {
  std::vector<SrvRecord> records{{20, 65535, 1, "late"}, {10, 0, 2, "early"}, {15, 1, 3, "middle"}};
  for (std::uint32_t seed = 0; seed < 50; ++seed) {
    CHECK(targets(order_srv(records, seeded(seed))) == std::vector<std::string>{"early", "middle", "late"});
  }
}

TEST_CASE("srv order: weighted selection is roughly proportional (10/90)") {
  std::vector<SrvRecord> records{{1, 10, 1, "light"}, {1, 90, 2, "heavy"}};
  Random random = seeded(2782);
  const int runs = 20000;
  int light_first = 0;
  for (int i = 0; i < runs; ++i) {
    if (order_srv(records, random).front().target == "light") ++light_first;
  }
  const double share = static_cast<double>(light_first) / runs;
  // RFC 2782 draws from [0, sum] inclusive: "light" wins for 11 of the 101 values.
  CHECK(std::abs(share - 0.10) < 0.05);  // within ±5 points of 10%
  CHECK(std::abs(share - 11.0 / 101.0) < 0.01);
}

TEST_CASE("srv order: three weights share the first place in proportion") {
  std::vector<SrvRecord> records{{0, 20, 1, "a"}, {0, 30, 1, "b"}, {0, 50, 1, "c"}};
  Random random = seeded(99);
  std::map<std::string, int> first;
  const int runs = 30000;
  for (int i = 0; i < runs; ++i) ++first[order_srv(records, random).front().target];
  CHECK(std::abs(first["a"] / double(runs) - 0.20) < 0.02);
  CHECK(std::abs(first["b"] / double(runs) - 0.30) < 0.02);
  CHECK(std::abs(first["c"] / double(runs) - 0.50) < 0.02);
}

TEST_CASE("srv order: zero weights go first in the running sum and get a small chance") {
  std::vector<SrvRecord> records{{0, 50, 1, "weighted"}, {0, 0, 1, "zero-a"}, {0, 0, 1, "zero-b"}};
  // A draw of 0 picks the first entry of the running-sum list: the first zero-weight record.
  CHECK(targets(order_srv(records, constant(0))) == std::vector<std::string>{"zero-a", "zero-b", "weighted"});
  // The largest draw picks the weighted record, then the zeros in input order.
  CHECK(targets(order_srv(records, constant(50))) == std::vector<std::string>{"weighted", "zero-a", "zero-b"});

  Random random = seeded(5);
  int zero_first = 0;
  const int runs = 51000;
  for (int i = 0; i < runs; ++i) {
    if (order_srv(records, random).front().weight == 0) ++zero_first;
  }
  CHECK(std::abs(zero_first / double(runs) - 1.0 / 51.0) < 0.005);  // 1 in (sum + 1)

  std::vector<SrvRecord> all_zero{{3, 0, 1, "x"}, {3, 0, 1, "y"}, {3, 0, 1, "z"}};
  CHECK(targets(order_srv(all_zero, seeded(1))) == std::vector<std::string>{"x", "y", "z"});
}

TEST_CASE("srv order: a random source that overshoots is reduced, a missing one takes list order") {
  std::vector<SrvRecord> records{{0, 1, 1, "a"}, {0, 1, 1, "b"}};
  CHECK(order_srv(records, constant(0xFFFFFFFFu)).size() == 2);
  CHECK(targets(order_srv(records, Random())) == std::vector<std::string>{"a", "b"});
  CHECK(srv_order(records, constant(2)) == std::vector<std::size_t>{1, 0});
}

TEST_CASE("srv: a single \".\" record says the service is not available") {
  CHECK(srv_says_no_service({{0, 0, 0, "."}}));
  CHECK(srv_says_no_service({{0, 0, 0, ""}}));
  CHECK_FALSE(srv_says_no_service({}));
  CHECK_FALSE(srv_says_no_service({{0, 0, 5269, "xmpp.example.org"}}));
  CHECK_FALSE(srv_says_no_service({{0, 0, 0, "."}, {0, 0, 5269, "xmpp.example.org"}}));
}
