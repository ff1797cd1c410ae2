// PLAIN (RFC 4616) verified against stored SCRAM keys: the password is run through
// PBKDF2 with the salt and iteration count of the strongest stored hash and the
// resulting StoredKey compared in constant time. Offer it only over TLS.
#pragma once

#include <cstdint>
#include <string>

#include "server/sasl/mechanism.hpp"

namespace herald::sasl {

class PlainMechanism final : public Mechanism {
 public:
  explicit PlainMechanism(std::uint32_t unknown_user_iterations = 4096);

  std::string_view name() const override { return "PLAIN"; }
  Step step(std::string_view client_message) override;
  Step provide(const std::optional<Credentials>& creds) override;

 private:
  enum class State { start, await_message, await_credentials, done };

  Step fail(Condition, std::string text);

  std::uint32_t unknown_user_iterations_;
  State state_ = State::start;
  std::string pending_username_;
  std::string pending_authzid_;
  std::string password_;  // prepared; wiped once used
};

}  // namespace herald::sasl
