// Minimal client side of SCRAM for driving the server mechanism in tests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/sasl/crypto.hpp"

namespace herald::sasl::test {

inline std::string scram_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out += c;
  }
  return out;
}

// Value of attribute `key` in a comma-separated SCRAM message.
inline std::optional<std::string> scram_attr(std::string_view msg, char key) {
  std::size_t start = 0;
  while (start <= msg.size()) {
    auto comma = msg.find(',', start);
    if (comma == std::string_view::npos) comma = msg.size();
    const auto part = msg.substr(start, comma - start);
    if (part.size() >= 2 && part[0] == key && part[1] == '=') return std::string(part.substr(2));
    start = comma + 1;
  }
  return std::nullopt;
}

struct ScramClient {
  Hash hash = Hash::sha256;
  std::string user = "user";
  std::string password = "pencil";
  std::string gs2 = "n,,";      // e.g. "p=tls-exporter,,", "y,,", "n,a=x,"
  std::string cb_data;          // appended to gs2 in c= when binding
  std::string client_nonce = "rOprNGfwEbeRWgbNEkqO";
  std::string final_extensions; // e.g. ",x=foo"

  std::string client_first_bare;
  std::string server_first;
  std::string auth_message;
  std::string salted;
  std::string h;  // XEP-0474 attribute seen in server-first, if any

  std::string first() {
    client_first_bare = "n=" + scram_escape(user) + ",r=" + client_nonce;
    return gs2 + client_first_bare;
  }

  // nullopt if the server-first-message is unusable (bad nonce prefix etc.).
  std::optional<std::string> final(std::string_view server_first_message) {
    server_first = std::string(server_first_message);
    const auto r = scram_attr(server_first, 'r');
    const auto s = scram_attr(server_first, 's');
    const auto i = scram_attr(server_first, 'i');
    if (!r || !s || !i || !r->starts_with(client_nonce) || r->size() == client_nonce.size()) return std::nullopt;
    h = scram_attr(server_first, 'h').value_or("");
    const auto salt = base64_decode(*s);
    if (!salt) return std::nullopt;
    salted = pbkdf2(hash, password, *salt, static_cast<std::uint32_t>(std::stoul(*i)));
    const std::string without_proof = "c=" + base64_encode(gs2 + cb_data) + ",r=" + *r + final_extensions;
    auth_message = client_first_bare + "," + server_first + "," + without_proof;
    const std::string client_key = hmac(hash, salted, "Client Key");
    const std::string stored_key = digest(hash, client_key);
    const std::string signature = hmac(hash, stored_key, auth_message);
    std::string proof = client_key;
    for (std::size_t k = 0; k < proof.size(); ++k) proof[k] = static_cast<char>(proof[k] ^ signature[k]);
    return without_proof + ",p=" + base64_encode(proof);
  }

  bool verify(std::string_view server_final) const {
    const std::string server_key = hmac(hash, salted, "Server Key");
    return server_final == "v=" + base64_encode(hmac(hash, server_key, auth_message));
  }
};

}  // namespace herald::sasl::test
