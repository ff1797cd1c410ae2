#include "server/sasl/credentials.hpp"

#include <stdexcept>

#include "server/xmpp/jid.hpp"

namespace herald::sasl {

const ScramKeys* Credentials::find(Hash h) const {
  for (const auto& k : keys) {
    if (k.hash == h) return &k;
  }
  return nullptr;
}

const ScramKeys* Credentials::strongest() const {
  for (Hash h : {Hash::sha512, Hash::sha256, Hash::sha1}) {
    if (const auto* k = find(h)) return k;
  }
  return nullptr;
}

std::optional<std::string> prepare_password(std::string_view password) {
  return xmpp::prep_opaque_string(password);
}

ScramKeys derive_keys(Hash h, std::string_view prepared_password, std::string_view salt,
                      std::uint32_t iterations) {
  const std::string salted = pbkdf2(h, prepared_password, salt, iterations);
  ScramKeys k;
  k.hash = h;
  k.salt = std::string(salt);
  k.iterations = iterations;
  k.stored_key = digest(h, hmac(h, salted, "Client Key"));
  k.server_key = hmac(h, salted, "Server Key");
  return k;
}

std::string unknown_user_salt(Hash h, std::string_view username) {
  static const std::string secret = random_bytes(32);
  std::string msg(hash_name(h));
  msg += '\0';
  msg += username;
  return hmac(Hash::sha256, secret, msg).substr(0, 16);
}

Credentials make_credentials(std::string_view password, std::uint32_t iterations) {
  const auto prepared = prepare_password(password);
  if (!prepared) throw std::invalid_argument("password is not acceptable (RFC 8265 OpaqueString)");
  if (iterations == 0) throw std::invalid_argument("SCRAM iteration count must be positive");
  Credentials c;
  for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) {
    c.keys.push_back(derive_keys(h, *prepared, random_bytes(16), iterations));
  }
  return c;
}

}  // namespace herald::sasl
