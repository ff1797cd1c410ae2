#include "federation/dns/plan.hpp"

namespace herald::federation::dns {

namespace {

std::vector<SrvRecord> usable(const SrvResult& result) {
  std::vector<SrvRecord> records;
  if (result.status != Status::ok) return records;
  for (const SrvRecord& record : result.records) {
    if (!is_root_target(record.target)) records.push_back(record);
  }
  return records;
}

// Every record names the root: the domain says this flavour is not offered.
bool says_no_service(const SrvResult& result) {
  if (result.status != Status::ok || result.records.empty()) return false;
  for (const SrvRecord& record : result.records) {
    if (!is_root_target(record.target)) return false;
  }
  return true;
}

std::string describe(std::string_view service, std::string_view domain, const SrvResult& result) {
  std::string text(service);
  text += domain;
  text += ": ";
  if (says_no_service(result)) {
    text += "target \".\" (service not offered)";
  } else if (result.status == Status::ok) {
    text += std::to_string(result.records.size()) + " record(s)";
  } else {
    text += to_string(result.status);
    if (!result.error.empty()) text += " (" + result.error + ")";
  }
  return text;
}

}  // namespace

ConnectionPlan connection_plan(std::string_view domain, const SrvResult& xmpps, const SrvResult& xmpp,
                               const Random& random) {
  ConnectionPlan plan;
  plan.reason = describe(xmpps_server_service, domain, xmpps) + "; " +
                describe(xmpp_server_service, domain, xmpp);

  // Direct TLS first in the combined list: srv_order keeps input order among zero weights.
  std::vector<SrvRecord> combined = usable(xmpps);
  const std::size_t direct_count = combined.size();
  for (SrvRecord& record : usable(xmpp)) combined.push_back(std::move(record));

  if (!combined.empty()) {
    for (std::size_t index : srv_order(combined, random)) {
      const SrvRecord& record = combined[index];
      plan.targets.push_back(Target{record.target, record.port, index < direct_count});
    }
    return plan;
  }
  if (says_no_service(xmpps) || says_no_service(xmpp)) {
    plan.reason = std::string(domain) + " offers no XMPP server-to-server service (" + plan.reason + ")";
    return plan;
  }
  plan.fallback = true;
  plan.targets.push_back(Target{std::string(domain), xmpp_server_port, false});
  plan.reason = "no usable SRV records, falling back to the A/AAAA records of " + std::string(domain) +
                " on port 5269 (" + plan.reason + ")";
  return plan;
}

}  // namespace herald::federation::dns
