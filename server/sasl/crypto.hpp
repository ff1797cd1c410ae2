// Thin wrappers over OpenSSL for what SASL (and stream/resource ids) need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::sasl {

enum class Hash { sha1, sha256, sha512 };

std::string_view hash_name(Hash);  // "SHA-1", "SHA-256", "SHA-512"
std::optional<Hash> hash_from_name(std::string_view);
std::size_t hash_size(Hash);       // output length in bytes

// CSPRNG (RAND_bytes). Throws std::runtime_error if the generator fails: callers must
// never fall back to weaker randomness.
std::string random_bytes(std::size_t n);
// CSPRNG text of [A-Za-z0-9] carrying at least `bytes`*8 bits of entropy; for stream
// ids, generated resources, nonces.
std::string random_id(std::size_t bytes = 12);

// CRYPTO_memcmp; only the lengths leak.
bool constant_time_equal(std::string_view a, std::string_view b);

// RFC 4648 base64 with padding. Decoding is strict: no whitespace, no characters
// outside the alphabet, exact padding, zero pad bits.
std::string base64_encode(std::string_view);
std::optional<std::string> base64_decode(std::string_view);

std::string hmac(Hash, std::string_view key, std::string_view data);
std::string digest(Hash, std::string_view);
// PBKDF2-HMAC (RFC 8018), output length hash_size(hash). Throws std::invalid_argument if
// iterations is 0 and std::runtime_error if OpenSSL fails.
std::string pbkdf2(Hash, std::string_view password, std::string_view salt, std::uint32_t iterations);

}  // namespace herald::sasl
