// Server Dialback keys (XEP-0220 §2.1.1 / §2.2.2, generated as XEP-0185 recommends):
//
//   key = hex( HMAC-SHA256( hex(SHA256(secret)), receiving + ' ' + originating + ' ' + stream_id ) )
//
// with lowercase hex throughout. `receiving` is the Receiving Server's domain (the 'to' of the
// <db:result/>), `originating` the Initiating/Sender domain (its 'from'), `stream_id` the id
// the Receiving Server gave the stream the key travels on. The secret never leaves the
// server, so the Authoritative Server can check a key without keeping per-stream state.
#pragma once

#include <string>
#include <string_view>

namespace herald::federation {

// 64 lowercase hex characters.
std::string dialback_key(std::string_view secret, std::string_view receiving,
                         std::string_view originating, std::string_view stream_id);

// Whether `key` is the key for these values, compared in constant time (only the length
// leaks, and the expected length is always 64). ASCII whitespace around `key` is ignored,
// since the key arrives as the character data of <db:result/> or <db:verify/>; anything
// else must match exactly (lowercase hex).
bool dialback_key_valid(std::string_view secret, std::string_view receiving,
                        std::string_view originating, std::string_view stream_id,
                        std::string_view key);

// A fresh secret from the CSPRNG: 32 random bytes as 64 lowercase hex characters. Throws
// std::runtime_error if the generator fails (never falls back to weaker randomness).
std::string make_dialback_secret();

}  // namespace herald::federation
