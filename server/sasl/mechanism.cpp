#include "server/sasl/mechanism.hpp"

#include <algorithm>

#include "server/sasl/plain.hpp"
#include "server/sasl/scram.hpp"

namespace herald::sasl {
namespace {

struct ScramName {
  Hash hash;
  bool plus;
};

std::optional<ScramName> parse_scram_name(std::string_view name) {
  for (Hash h : {Hash::sha1, Hash::sha256, Hash::sha512}) {
    const std::string base = "SCRAM-" + std::string(hash_name(h));
    if (name == base) return ScramName{h, false};
    if (name == base + "-PLUS") return ScramName{h, true};
  }
  return std::nullopt;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool is_plus(std::string_view name) {
  return name.size() > 5 && name.substr(name.size() - 5) == "-PLUS";
}

}  // namespace

Step Step::challenge(std::string data) {
  Step s;
  s.kind = Kind::challenge;
  s.data = std::move(data);
  return s;
}

Step Step::success(std::string data) {
  Step s;
  s.kind = Kind::success;
  s.data = std::move(data);
  return s;
}

Step Step::failure(Condition c, std::string text) {
  Step s;
  s.kind = Kind::failure;
  s.condition = c;
  s.text = std::move(text);
  return s;
}

Step Step::lookup(std::string username) {
  Step s;
  s.kind = Kind::lookup;
  s.username = std::move(username);
  return s;
}

std::string_view condition_name(Condition c) {
  switch (c) {
    case Condition::aborted: return "aborted";
    case Condition::account_disabled: return "account-disabled";
    case Condition::credentials_expired: return "credentials-expired";
    case Condition::encryption_required: return "encryption-required";
    case Condition::incorrect_encoding: return "incorrect-encoding";
    case Condition::invalid_authzid: return "invalid-authzid";
    case Condition::invalid_mechanism: return "invalid-mechanism";
    case Condition::malformed_request: return "malformed-request";
    case Condition::mechanism_too_weak: return "mechanism-too-weak";
    case Condition::not_authorized: return "not-authorized";
    case Condition::temporary_auth_failure: return "temporary-auth-failure";
  }
  return "not-authorized";
}

const std::vector<std::string>& all_mechanism_names() {
  static const std::vector<std::string> names{
      "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512",
      "SCRAM-SHA-256",      "SCRAM-SHA-1",        "PLAIN"};
  return names;
}

std::vector<std::string> offered_mechanisms(const ConnectionInfo& info,
                                            const std::vector<std::string>& enabled) {
  std::vector<std::string> out;
  for (const auto& name : all_mechanism_names()) {
    if (!contains(enabled, name)) continue;
    if (name == "PLAIN" && !info.secure) continue;
    if (is_plus(name) && info.channel_bindings.empty()) continue;
    out.push_back(name);
  }
  return out;
}

std::vector<std::string> channel_binding_types(const ConnectionInfo& info) {
  std::vector<std::string> out;
  for (const auto& cb : info.channel_bindings) {
    if (cb.advertised && !cb.type.empty() && !contains(out, cb.type)) out.push_back(cb.type);
  }
  return out;
}

std::vector<std::string> channel_binding_types(const ConnectionInfo& info,
                                               const std::vector<std::string>& offered) {
  if (std::none_of(offered.begin(), offered.end(), [](const std::string& m) { return is_plus(m); })) {
    return {};
  }
  return channel_binding_types(info);
}

std::string downgrade_protection_hash(Hash h, std::vector<std::string> mechanisms,
                                      std::vector<std::string> cb_types) {
  // std::string ordering compares as unsigned char, which is i;octet (RFC 4790 §9.3).
  std::sort(mechanisms.begin(), mechanisms.end());
  std::sort(cb_types.begin(), cb_types.end());
  std::string s;
  for (std::size_t i = 0; i < mechanisms.size(); ++i) {
    if (i > 0) s += '\x1E';
    s += mechanisms[i];
  }
  if (!cb_types.empty()) {
    s += '\x1F';
    for (std::size_t i = 0; i < cb_types.size(); ++i) {
      if (i > 0) s += '\x1E';
      s += cb_types[i];
    }
  }
  return base64_encode(digest(h, s));
}

std::unique_ptr<Mechanism> create_mechanism(std::string_view name, const ConnectionInfo& info,
                                            const std::vector<std::string>& offered,
                                            const MechanismOptions& options) {
  if (!contains(offered, name)) return nullptr;
  if (name == "PLAIN") {
    // Never accept cleartext passwords without TLS, even if misconfigured to offer it.
    if (!info.secure) return nullptr;
    return std::make_unique<PlainMechanism>(options.unknown_user_iterations);
  }
  const auto scram = parse_scram_name(name);
  if (!scram) return nullptr;
  if (scram->plus && info.channel_bindings.empty()) return nullptr;
  ScramOptions so;
  so.unknown_user_iterations = options.unknown_user_iterations;
  return std::make_unique<ScramMechanism>(scram->hash, scram->plus, info, offered, std::move(so));
}

}  // namespace herald::sasl
