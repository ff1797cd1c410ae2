// Stored SCRAM credentials (RFC 5802 §3). The server never keeps the password: only
// salt, iteration count, StoredKey and ServerKey per hash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/sasl/crypto.hpp"

namespace herald::sasl {

struct ScramKeys {
  Hash hash = Hash::sha256;
  std::string salt;            // raw bytes
  std::uint32_t iterations = 0;
  std::string stored_key;      // raw bytes, H(ClientKey)
  std::string server_key;      // raw bytes
};

struct Credentials {
  std::vector<ScramKeys> keys;
  const ScramKeys* find(Hash) const;
  // The entry PLAIN verifies against: SHA-512, else SHA-256, else SHA-1.
  const ScramKeys* strongest() const;
};

// RFC 8265 OpaqueString; nullopt if the password is not acceptable (empty, controls...).
std::optional<std::string> prepare_password(std::string_view);

// SaltedPassword = PBKDF2(prepared_password, salt, iterations); ClientKey, StoredKey and
// ServerKey as RFC 5802 §3. Throws std::invalid_argument if iterations is 0.
ScramKeys derive_keys(Hash, std::string_view prepared_password, std::string_view salt,
                      std::uint32_t iterations);

// Fresh 16-byte CSPRNG salt per hash, keys for SHA-1, SHA-256 and SHA-512. Throws
// std::invalid_argument if the password fails preparation or iterations is 0.
Credentials make_credentials(std::string_view password, std::uint32_t iterations);

// Salt shown for a user that does not exist: HMAC of the username under a per-process
// random secret, so repeated attempts see the same salt (as for a real account) and the
// value reveals nothing. 16 bytes, like make_credentials().
std::string unknown_user_salt(Hash, std::string_view username);

}  // namespace herald::sasl
