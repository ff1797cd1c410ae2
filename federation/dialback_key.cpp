#include "federation/dialback_key.hpp"

#include "server/sasl/crypto.hpp"

namespace herald::federation {
namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out += kHex[u >> 4];
    out += kHex[u & 0xf];
  }
  return out;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

}  // namespace

std::string dialback_key(std::string_view secret, std::string_view receiving,
                         std::string_view originating, std::string_view stream_id) {
  using sasl::Hash;
  const std::string hmac_key = hex(sasl::digest(Hash::sha256, secret));
  std::string text;
  text.reserve(receiving.size() + originating.size() + stream_id.size() + 2);
  text.append(receiving).append(1, ' ').append(originating).append(1, ' ').append(stream_id);
  return hex(sasl::hmac(Hash::sha256, hmac_key, text));
}

bool dialback_key_valid(std::string_view secret, std::string_view receiving,
                        std::string_view originating, std::string_view stream_id,
                        std::string_view key) {
  const std::string expected = dialback_key(secret, receiving, originating, stream_id);
  return sasl::constant_time_equal(expected, trim(key));
}

std::string make_dialback_secret() { return hex(sasl::random_bytes(32)); }

}  // namespace herald::federation
