// SCRAM-SHA-{1,256,512}[-PLUS] server (RFC 5802, RFC 7677) with XEP-0474 downgrade
// protection. Normally created through create_mechanism(); constructing it directly is
// the test seam for fixed nonces.
//
// Failure conditions: syntax errors, bad escapes, unknown mandatory extensions (m=),
// the wrong nonce, a -PLUS/flag mismatch -> malformed_request. Wrong password, unknown
// user, a username that fails preparation, 'y' while -PLUS was offered, an unsupported
// channel-binding type, a c= mismatch -> not_authorized.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/sasl/mechanism.hpp"

namespace herald::sasl {

struct ScramOptions {
  std::uint32_t unknown_user_iterations = 4096;
  // Test seams. Production code leaves both alone.
  std::string server_nonce;          // empty: fresh CSPRNG nonce
  bool downgrade_protection = true;  // XEP-0474 "h"; off only to replay RFC examples
};

class ScramMechanism final : public Mechanism {
 public:
  ScramMechanism(Hash, bool plus, ConnectionInfo, std::vector<std::string> offered, ScramOptions = {});

  std::string_view name() const override { return name_; }
  Step step(std::string_view client_message) override;
  Step provide(const std::optional<Credentials>& creds) override;

  // After success: the channel-binding type used, empty for non-PLUS.
  const std::string& channel_binding_type() const { return cb_type_; }

 private:
  enum class State { start, await_client_first, await_credentials, await_client_final, done };
  enum class Flag { n, y, p };

  Step client_first(std::string_view);
  Step client_final(std::string_view);
  Step fail(Condition, std::string text);

  Hash hash_;
  bool plus_;
  std::string name_;
  ConnectionInfo info_;
  std::vector<std::string> offered_;
  ScramOptions options_;

  State state_ = State::start;
  Flag flag_ = Flag::n;
  std::string cb_type_;
  std::string cb_data_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string client_nonce_;
  std::string nonce_;  // client + server
  std::string server_first_;
  std::string pending_username_;
  std::string pending_authzid_;
  ScramKeys keys_;
  bool known_user_ = false;
};

}  // namespace herald::sasl
