#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/sasl/mechanism.hpp"

using namespace herald::sasl;
using Names = std::vector<std::string>;

TEST_CASE("condition names") {
  CHECK(condition_name(Condition::not_authorized) == "not-authorized");
  CHECK(condition_name(Condition::malformed_request) == "malformed-request");
  CHECK(condition_name(Condition::temporary_auth_failure) == "temporary-auth-failure");
  CHECK(condition_name(Condition::invalid_authzid) == "invalid-authzid");
  CHECK(condition_name(Condition::account_disabled) == "account-disabled");
  CHECK(condition_name(Condition::credentials_expired) == "credentials-expired");
  CHECK(condition_name(Condition::encryption_required) == "encryption-required");
  CHECK(condition_name(Condition::incorrect_encoding) == "incorrect-encoding");
  CHECK(condition_name(Condition::invalid_mechanism) == "invalid-mechanism");
  CHECK(condition_name(Condition::mechanism_too_weak) == "mechanism-too-weak");
  CHECK(condition_name(Condition::aborted) == "aborted");
}

TEST_CASE("offered_mechanisms") {
  const Names& all = all_mechanism_names();
  CHECK(all == Names{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512",
                     "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"});
  ConnectionInfo plain_tcp;
  CHECK(offered_mechanisms(plain_tcp, all) == Names{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"});

  ConnectionInfo tls;
  tls.secure = true;
  CHECK(offered_mechanisms(tls, all) == Names{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"});

  ConnectionInfo cb = tls;
  cb.channel_bindings = {{"tls-server-end-point", "x"}};
  CHECK(offered_mechanisms(cb, all) == all);

  // Filtered by `enabled`, order stays the preference order.
  CHECK(offered_mechanisms(cb, {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "BOGUS"}) ==
        Names{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "PLAIN"});
  CHECK(offered_mechanisms(cb, {}).empty());
}

TEST_CASE("channel_binding_types") {
  ConnectionInfo info;
  info.secure = true;
  CHECK(channel_binding_types(info).empty());
  info.channel_bindings = {{"tls-exporter", "a"}, {"tls-server-end-point", "b"}, {"tls-exporter", "c"}};
  CHECK(channel_binding_types(info) == Names{"tls-exporter", "tls-server-end-point"});
  CHECK(channel_binding_types(info, offered_mechanisms(info, all_mechanism_names())) ==
        Names{"tls-exporter", "tls-server-end-point"});
  CHECK(channel_binding_types(info, {"SCRAM-SHA-256", "PLAIN"}).empty());
}

TEST_CASE("create_mechanism") {
  ConnectionInfo info;
  info.secure = true;
  info.channel_bindings = {{"tls-exporter", "a"}};
  const auto offered = offered_mechanisms(info, all_mechanism_names());
  for (const auto& name : offered) {
    auto m = create_mechanism(name, info, offered);
    REQUIRE(m);
    CHECK(m->name() == name);
  }
  CHECK(create_mechanism("SCRAM-SHA-256", info, {"SCRAM-SHA-1"}) == nullptr);  // not offered
  CHECK(create_mechanism("DIGEST-MD5", info, {"DIGEST-MD5"}) == nullptr);      // unknown
  CHECK(create_mechanism("scram-sha-1", info, {"scram-sha-1"}) == nullptr);    // names are exact
  ConnectionInfo no_cb;
  CHECK(create_mechanism("SCRAM-SHA-256-PLUS", no_cb, {"SCRAM-SHA-256-PLUS"}) == nullptr);
}
