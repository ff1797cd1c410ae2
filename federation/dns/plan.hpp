// Where to connect for a remote domain (RFC 6120 §3.2 with XEP-0368): a pure function of
// the two SRV lookups, so every case can be tested without a network.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "federation/dns/answer.hpp"
#include "federation/dns/srv.hpp"

namespace herald::federation::dns {

inline constexpr std::uint16_t xmpp_server_port = 5269;
inline constexpr std::string_view xmpps_server_service = "_xmpps-server._tcp.";
inline constexpr std::string_view xmpp_server_service = "_xmpp-server._tcp.";

struct Target {
  std::string host;
  std::uint16_t port = xmpp_server_port;
  bool direct_tls = false;  // XEP-0368: TLS from the first byte; otherwise STARTTLS
  friend bool operator==(const Target&, const Target&) = default;
};

struct ConnectionPlan {
  std::vector<Target> targets;  // try in this order; empty: the domain offers no service
  bool fallback = false;        // no SRV records: the domain itself on port 5269
  std::string reason;           // what the DNS said, in words an operator can act on
};

// `xmpps` is the result for _xmpps-server._tcp.<domain> (direct TLS), `xmpp` the one for
// _xmpp-server._tcp.<domain> (STARTTLS).
// - Records from either: both lists combined and ordered as one (XEP-0368 §3) by RFC 2782
//   priority and weight; on ties between zero-weight records, direct TLS first. Records
//   whose target is "." are dropped (a list saying "." for one flavour only withdraws
//   that flavour).
// - Neither has a usable record and at least one says "." (RFC 2782): no service, empty
//   plan, whatever the other lookup returned.
// - Otherwise (both NXDOMAIN/NODATA, or lookups that failed): the RFC 6120 §3.2.2
//   fallback, {domain, 5269, STARTTLS}, resolved through A/AAAA.
ConnectionPlan connection_plan(std::string_view domain, const SrvResult& xmpps, const SrvResult& xmpp,
                               const Random& random = random_up_to);

}  // namespace herald::federation::dns
