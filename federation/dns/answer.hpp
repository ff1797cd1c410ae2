// The result of an SRV lookup, and the parser that turns a raw DNS answer into one. The
// parser is pure and bounds-checked: any byte string yields a result (malformed input is
// Status::error with a reason), never a crash. It is what tests/fuzz/fuzz_dns_answer.cpp
// exercises, and what the Resolver uses, because c-ares 1.18's ares_parse_srv_reply does
// not report TTLs.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "federation/dns/srv.hpp"

namespace herald::federation::dns {

enum class Status {
  ok,         // records found
  not_found,  // NXDOMAIN, or the name exists without records of this type (NODATA)
  error,      // the server failed or refused, the answer was malformed, the name invalid...
  timeout,    // no answer within the configured bound
};
// "ok", "not found", "error", "timeout"
std::string_view to_string(Status);

struct SrvResult {
  Status status = Status::error;
  std::vector<SrvRecord> records;  // in answer order; see order_srv()
  // For ok: the smallest TTL of the SRV records and of any CNAMEs leading to them. For a
  // result from the Resolver: what is left of it, capped at Options::max_ttl; for
  // not_found, the negative-cache time.
  std::chrono::seconds ttl{0};
  std::string error;  // words for the log when status != ok
  bool from_cache = false;
};

// Parses a DNS response message (RFC 1035 §4.1) to an SRV query: header, questions
// (skipped), then every IN SRV record of the answer section (names decompressed; a
// target of the root name becomes "."; bytes outside printable ASCII, '.' and '\' inside a
// label are escaped as \DDD or \c). TTLs with the high bit set count as 0 (RFC 2181 §8).
// rcode NXDOMAIN or no SRV record: not_found. Any other rcode, a truncated (TC) or
// non-response message, or a structural error: error.
SrvResult parse_srv_answer(std::span<const std::uint8_t> message);

}  // namespace herald::federation::dns
