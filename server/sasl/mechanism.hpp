// Server side of SASL (RFC 4422 as profiled by RFC 6120 §6 and XEP-0388): mechanism
// selection and a transport-independent step interface. The caller owns the XML, base64
// and storage; mechanisms only see raw bytes and Credentials.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/sasl/credentials.hpp"
#include "server/sasl/crypto.hpp"

namespace herald::sasl {

struct ChannelBinding {
  std::string type;  // "tls-exporter" (RFC 9266) or "tls-server-end-point" (RFC 5929)
  std::string data;  // raw channel binding data for this connection
  // Listed in XEP-0440 (and so in XEP-0474's hash). A binding accepted only for
  // compatibility with clients that ignore XEP-0440 is not advertised.
  bool advertised = true;
};

struct ConnectionInfo {
  bool secure = false;                          // TLS is up
  std::vector<ChannelBinding> channel_bindings; // empty: no -PLUS mechanisms
};

// RFC 6120 §6.5 failure conditions.
enum class Condition {
  aborted,
  account_disabled,
  credentials_expired,
  encryption_required,
  incorrect_encoding,
  invalid_authzid,
  invalid_mechanism,
  malformed_request,
  mechanism_too_weak,
  not_authorized,
  temporary_auth_failure,
};

std::string_view condition_name(Condition);  // "not-authorized", ...

struct Step {
  enum class Kind { challenge, success, failure, lookup } kind = Kind::failure;
  std::string data;       // challenge payload, or additional data with success (raw bytes,
                          // caller base64-encodes). Empty success data (PLAIN) means no
                          // additional data: send an empty <success/>.
  Condition condition{};  // failure
  std::string text;       // failure detail for LOGS ONLY: never send it to the peer
  std::string username;   // lookup: the prepared localpart whose credentials are needed

  static Step challenge(std::string data);
  static Step success(std::string data);
  static Step failure(Condition, std::string text);
  static Step lookup(std::string username);
};

class Mechanism {
 public:
  virtual ~Mechanism() = default;
  virtual std::string_view name() const = 0;
  // The first call gets the initial response, empty if the client sent none (the
  // mechanism then answers with an empty challenge). Once a failure or success has been
  // returned, further calls fail with malformed_request.
  virtual Step step(std::string_view client_message) = 0;
  // Answer to Step::Kind::lookup. nullopt = no such user (or no usable credentials);
  // the exchange then continues indistinguishably and ends in not_authorized.
  virtual Step provide(const std::optional<Credentials>& creds) = 0;

  // After success: the authenticated, prepared localpart.
  const std::string& username() const { return username_; }
  // After success: the authorization identity the client asked for, decoded but not
  // prepared or checked; empty if none. The caller must accept it only if it is empty
  // or equals the authenticated bare JID (otherwise: Condition::invalid_authzid).
  const std::string& authzid() const { return authzid_; }

 protected:
  std::string username_;
  std::string authzid_;
};

struct MechanismOptions {
  // Iteration count shown for unknown users; set it to the configured
  // auth.scram_iterations so that fake users look like real ones.
  std::uint32_t unknown_user_iterations = 4096;
};

// All mechanism names Herald implements, in preference order.
const std::vector<std::string>& all_mechanism_names();

// What this connection offers, in preference order, filtered by `enabled` (names; an
// empty list enables nothing). PLAIN only when info.secure; -PLUS only when info has
// channel bindings.
std::vector<std::string> offered_mechanisms(const ConnectionInfo&, const std::vector<std::string>& enabled);

// Channel-binding types this connection can bind to (deduplicated, in info order).
std::vector<std::string> channel_binding_types(const ConnectionInfo&);
// The types to advertise with XEP-0440 <sasl-channel-binding/> next to `offered`: the
// above if `offered` contains a -PLUS mechanism, else empty (then do not send the
// element at all). The XEP-0474 hash assumes exactly this advertisement.
std::vector<std::string> channel_binding_types(const ConnectionInfo&, const std::vector<std::string>& offered);

// XEP-0474 §"Server Sends Downgrade Protection Hash": base64(H(S)) where S is the sorted
// (i;octet) mechanism list joined by 0x1E, then, if channel-binding types were
// advertised, 0x1F and the sorted types joined by 0x1E.
std::string downgrade_protection_hash(Hash, std::vector<std::string> advertised_mechanisms,
                                      std::vector<std::string> advertised_cb_types);

// nullptr if `name` is unknown or not in `offered`. `offered` must be exactly the list
// advertised on this stream (for the SASL profile in use), since SCRAM signs it
// (XEP-0474) and uses it to detect 'y' downgrades.
std::unique_ptr<Mechanism> create_mechanism(std::string_view name, const ConnectionInfo&,
                                            const std::vector<std::string>& offered,
                                            const MechanismOptions& = {});

}  // namespace herald::sasl
