#include "federation/dns/srv.hpp"

#include <algorithm>
#include <limits>
#include <random>

namespace herald::federation::dns {

std::uint32_t random_up_to(std::uint32_t bound) {
  thread_local std::mt19937 engine{std::random_device{}()};
  std::uniform_int_distribution<std::uint32_t> distribution(0, bound);
  return distribution(engine);
}

std::vector<std::size_t> srv_order(const std::vector<SrvRecord>& records, const Random& random) {
  std::vector<std::size_t> by_priority(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) by_priority[i] = i;
  std::stable_sort(by_priority.begin(), by_priority.end(), [&](std::size_t a, std::size_t b) {
    return records[a].priority < records[b].priority;
  });

  std::vector<std::size_t> order;
  order.reserve(records.size());
  std::vector<std::size_t> group;
  for (std::size_t begin = 0; begin < by_priority.size();) {
    std::size_t end = begin;
    const std::uint16_t priority = records[by_priority[begin]].priority;
    while (end < by_priority.size() && records[by_priority[end]].priority == priority) ++end;

    // The running-sum list: zero weights first, then the others, each in input order.
    group.clear();
    for (std::size_t i = begin; i < end; ++i) {
      if (records[by_priority[i]].weight == 0) group.push_back(by_priority[i]);
    }
    for (std::size_t i = begin; i < end; ++i) {
      if (records[by_priority[i]].weight != 0) group.push_back(by_priority[i]);
    }

    while (!group.empty()) {
      std::uint64_t sum = 0;
      for (std::size_t index : group) sum += records[index].weight;
      std::size_t chosen = 0;
      // More than 65537 records of weight 65535 in one priority cannot come from one DNS
      // message; should a caller build such a list, take the list order instead.
      if (sum <= std::numeric_limits<std::uint32_t>::max() - 1) {
        std::uint64_t pick = random ? random(static_cast<std::uint32_t>(sum)) : 0;
        if (pick > sum) pick %= sum + 1;
        std::uint64_t running = 0;
        for (chosen = 0; chosen < group.size(); ++chosen) {
          running += records[group[chosen]].weight;
          if (running >= pick) break;
        }
        if (chosen == group.size()) chosen = group.size() - 1;  // unreachable: running ends at sum
      }
      order.push_back(group[chosen]);
      group.erase(group.begin() + static_cast<std::ptrdiff_t>(chosen));
    }
    begin = end;
  }
  return order;
}

std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, const Random& random) {
  std::vector<SrvRecord> ordered;
  ordered.reserve(records.size());
  for (std::size_t index : srv_order(records, random)) ordered.push_back(std::move(records[index]));
  return ordered;
}

bool is_root_target(const std::string& target) { return target.empty() || target == "."; }

bool srv_says_no_service(const std::vector<SrvRecord>& records) {
  return records.size() == 1 && is_root_target(records.front().target);
}

}  // namespace herald::federation::dns
