// RFC 2782 SRV ordering: pure functions, no I/O. The random source is a parameter so that
// tests can make the weighted choice deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace herald::federation::dns {

struct SrvRecord {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;  // host name without the trailing dot; "." is the root (no service)
  friend bool operator==(const SrvRecord&, const SrvRecord&) = default;
};

// Returns a uniformly distributed integer in [0, bound], bound included (RFC 2782 asks for
// "a uniform random number between 0 and the sum computed (inclusive)"). A value above
// `bound` is reduced modulo bound + 1.
using Random = std::function<std::uint32_t(std::uint32_t bound)>;

// The default source: a per-thread std::mt19937 seeded from std::random_device. Weights
// only spread load, so this needs no cryptographic strength.
std::uint32_t random_up_to(std::uint32_t bound);

// RFC 2782 order as a permutation of `records`: priorities ascending; within a priority the
// weighted random selection of the RFC, with zero-weight records placed first in the
// running-sum list (so each has a 1 in (sum + 1) chance per draw, as the RFC intends), the
// others in input order. Ties that the random draw does not decide keep input order.
std::vector<std::size_t> srv_order(const std::vector<SrvRecord>& records, const Random& random);

// The records themselves in that order.
std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records,
                                 const Random& random = random_up_to);

// True when the target is the root domain ("." or, as some libraries spell it, "").
bool is_root_target(const std::string& target);

// RFC 2782: a single record whose target is "." means the service is decidedly not
// available at this domain.
bool srv_says_no_service(const std::vector<SrvRecord>& records);

}  // namespace herald::federation::dns
