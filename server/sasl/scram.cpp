#include "server/sasl/scram.hpp"

#include <algorithm>
#include <string>

#include "server/xmpp/jid.hpp"

namespace herald::sasl {
namespace {

// Far beyond any legitimate SCRAM message; keeps hostile input cheap to reject.
constexpr std::size_t kMaxMessage = 8192;

bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
}

// RFC 5802 §7: saslname = 1*(value-safe-char / "=2C" / "=3D"). Any other '=' is an error.
std::optional<std::string> decode_saslname(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out += s[i];
      continue;
    }
    if (s.substr(i, 3) == "=2C") {
      out += ',';
    } else if (s.substr(i, 3) == "=3D") {
      out += '=';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

// attr-val = ALPHA "=" value, value = 1*value-char (NUL and ',' are excluded by the
// caller's checks and the split).
bool is_attr_val(std::string_view a) { return a.size() >= 3 && is_alpha(a[0]) && a[1] == '='; }

// printable = %x21-2B / %x2D-7E (',' is gone after splitting)
bool is_printable_nonce(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7E && c != ','; });
}

bool is_cb_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alpha(c) || is_digit(c) || c == '.' || c == '-'; });
}

bool sane_text(std::string_view s) {
  return s.size() <= kMaxMessage && s.find('\0') == std::string_view::npos && xmpp::is_valid_utf8(s);
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (std::size_t i = 0; i < a.size(); ++i) {
    out[i] = static_cast<char>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
  }
  return out;
}

}  // namespace

ScramMechanism::ScramMechanism(Hash hash, bool plus, ConnectionInfo info, std::vector<std::string> offered,
                               ScramOptions options)
    : hash_(hash),
      plus_(plus),
      name_("SCRAM-" + std::string(hash_name(hash)) + (plus ? "-PLUS" : "")),
      info_(std::move(info)),
      offered_(std::move(offered)),
      options_(std::move(options)) {}

Step ScramMechanism::fail(Condition c, std::string text) {
  state_ = State::done;
  return Step::failure(c, std::move(text));
}

Step ScramMechanism::step(std::string_view msg) {
  switch (state_) {
    case State::start:
      if (msg.empty()) {
        // No initial response: RFC 6120 §6.4.2 asks for an empty challenge.
        state_ = State::await_client_first;
        return Step::challenge({});
      }
      return client_first(msg);
    case State::await_client_first:
      return client_first(msg);
    case State::await_client_final:
      return client_final(msg);
    case State::await_credentials:
    case State::done:
      break;
  }
  return fail(Condition::malformed_request, "unexpected SCRAM message");
}

Step ScramMechanism::client_first(std::string_view msg) {
  if (msg.empty() || !sane_text(msg)) return fail(Condition::malformed_request, "bad client-first-message");

  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  std::size_t pos;
  std::string cb_type;
  if (msg.starts_with("n,")) {
    flag_ = Flag::n;
    pos = 2;
  } else if (msg.starts_with("y,")) {
    flag_ = Flag::y;
    pos = 2;
  } else if (msg.starts_with("p=")) {
    const auto comma = msg.find(',', 2);
    if (comma == std::string_view::npos) return fail(Condition::malformed_request, "bad gs2 header");
    cb_type = std::string(msg.substr(2, comma - 2));
    if (!is_cb_name(cb_type)) return fail(Condition::malformed_request, "bad channel binding name");
    flag_ = Flag::p;
    pos = comma + 1;
  } else {
    return fail(Condition::malformed_request, "bad gs2-cbind-flag");
  }
  std::string authzid;
  if (msg.substr(pos).starts_with("a=")) {
    const auto comma = msg.find(',', pos);
    if (comma == std::string_view::npos) return fail(Condition::malformed_request, "bad gs2 header");
    auto a = decode_saslname(msg.substr(pos + 2, comma - pos - 2));
    if (!a) return fail(Condition::malformed_request, "bad authzid encoding");
    authzid = std::move(*a);
    pos = comma;
  }
  if (pos >= msg.size() || msg[pos] != ',') return fail(Condition::malformed_request, "bad gs2 header");
  ++pos;
  const std::string_view gs2_header = msg.substr(0, pos);
  const std::string_view bare = msg.substr(pos);

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  const auto attrs = split_commas(bare);
  if (!attrs.empty() && attrs[0].starts_with("m=")) {
    return fail(Condition::malformed_request, "unsupported mandatory extension");
  }
  if (attrs.size() < 2 || !attrs[0].starts_with("n=") || !attrs[1].starts_with("r=")) {
    return fail(Condition::malformed_request, "client-first-message needs n= and r=");
  }
  for (std::size_t i = 2; i < attrs.size(); ++i) {
    if (!is_attr_val(attrs[i])) return fail(Condition::malformed_request, "bad extension attribute");
    if (attrs[i][0] == 'm') return fail(Condition::malformed_request, "unsupported mandatory extension");
  }
  auto username = decode_saslname(attrs[0].substr(2));
  if (!username) return fail(Condition::malformed_request, "bad username encoding");
  const std::string_view client_nonce = attrs[1].substr(2);
  if (!is_printable_nonce(client_nonce)) return fail(Condition::malformed_request, "bad client nonce");

  // Channel-binding negotiation (RFC 5802 §6).
  if (plus_) {
    if (flag_ != Flag::p) return fail(Condition::malformed_request, "-PLUS mechanism without channel binding");
    const auto it = std::find_if(info_.channel_bindings.begin(), info_.channel_bindings.end(),
                                 [&](const ChannelBinding& cb) { return cb.type == cb_type; });
    if (it == info_.channel_bindings.end()) {
      return fail(Condition::not_authorized, "unsupported channel binding type " + cb_type);
    }
    cb_type_ = cb_type;
    cb_data_ = it->data;
  } else {
    if (flag_ == Flag::p) return fail(Condition::malformed_request, "channel binding with a non-PLUS mechanism");
    // 'y' means the client can bind but saw no -PLUS: if we offered one, the list was
    // tampered with.
    if (flag_ == Flag::y &&
        std::any_of(offered_.begin(), offered_.end(), [](const std::string& m) { return m.ends_with("-PLUS"); })) {
      return fail(Condition::not_authorized, "channel binding downgrade detected ('y' while -PLUS offered)");
    }
  }

  // RFC 5802 asks to abort if the username cannot be prepared; it cannot name an account.
  auto prepared = xmpp::prep_localpart(*username);
  if (!prepared) return fail(Condition::not_authorized, "username failed preparation");

  gs2_header_ = std::string(gs2_header);
  client_first_bare_ = std::string(bare);
  client_nonce_ = std::string(client_nonce);
  pending_username_ = *prepared;
  pending_authzid_ = std::move(authzid);
  state_ = State::await_credentials;
  return Step::lookup(std::move(*prepared));
}

Step ScramMechanism::provide(const std::optional<Credentials>& creds) {
  if (state_ != State::await_credentials) {
    return fail(Condition::temporary_auth_failure, "provide() called out of sequence");
  }
  const std::size_t hlen = hash_size(hash_);
  const ScramKeys* real = creds ? creds->find(hash_) : nullptr;
  if (real != nullptr && real->iterations > 0 && real->stored_key.size() == hlen &&
      real->server_key.size() == hlen && !real->salt.empty()) {
    keys_ = *real;
    known_user_ = true;
  } else {
    // Unknown user (or no usable keys for this hash): carry on with a stable fake salt
    // and random keys so the exchange looks the same and fails only at the proof.
    keys_.hash = hash_;
    keys_.salt = unknown_user_salt(hash_, pending_username_);
    keys_.iterations = options_.unknown_user_iterations > 0 ? options_.unknown_user_iterations : 4096;
    keys_.stored_key = random_bytes(hlen);
    keys_.server_key = random_bytes(hlen);
    known_user_ = false;
  }

  const std::string server_nonce =
      options_.server_nonce.empty() ? base64_encode(random_bytes(24)) : options_.server_nonce;
  nonce_ = client_nonce_ + server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(keys_.salt) + ",i=" + std::to_string(keys_.iterations);
  if (options_.downgrade_protection) {
    server_first_ += ",h=" + downgrade_protection_hash(hash_, offered_, channel_binding_types(info_, offered_));
  }
  state_ = State::await_client_final;
  return Step::challenge(server_first_);
}

Step ScramMechanism::client_final(std::string_view msg) {
  if (msg.empty() || !sane_text(msg)) return fail(Condition::malformed_request, "bad client-final-message");

  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  const auto attrs = split_commas(msg);
  if (attrs.size() < 3 || !attrs.front().starts_with("c=") || !attrs[1].starts_with("r=") ||
      !attrs.back().starts_with("p=")) {
    return fail(Condition::malformed_request, "client-final-message needs c=, r= and p=");
  }
  for (std::size_t i = 2; i + 1 < attrs.size(); ++i) {
    if (!is_attr_val(attrs[i])) return fail(Condition::malformed_request, "bad extension attribute");
    if (attrs[i][0] == 'm') return fail(Condition::malformed_request, "unsupported mandatory extension");
  }
  const auto cbind = base64_decode(attrs.front().substr(2));
  if (!cbind) return fail(Condition::malformed_request, "c= is not valid base64");
  const auto proof = base64_decode(attrs.back().substr(2));
  if (!proof || proof->size() != hash_size(hash_)) return fail(Condition::malformed_request, "bad proof encoding");
  if (attrs[1].substr(2) != nonce_) return fail(Condition::malformed_request, "nonce mismatch");

  // The server rebuilds c= itself (RFC 5802 §6): gs2 header, plus the binding data when
  // the client asked for binding.
  const std::string expected = gs2_header_ + (flag_ == Flag::p ? cb_data_ : std::string());
  if (!constant_time_equal(*cbind, expected)) return fail(Condition::not_authorized, "channel binding mismatch");

  const std::string_view without_proof = msg.substr(0, msg.size() - attrs.back().size() - 1);
  std::string auth_message = client_first_bare_;
  auth_message += ',';
  auth_message += server_first_;
  auth_message += ',';
  auth_message += without_proof;

  const std::string client_signature = hmac(hash_, keys_.stored_key, auth_message);
  const std::string client_key = xor_bytes(*proof, client_signature);
  const bool proof_ok = constant_time_equal(digest(hash_, client_key), keys_.stored_key);
  if (!proof_ok || !known_user_) {
    // Same text for both so logs that leak to the peer still reveal nothing.
    return fail(Condition::not_authorized, "invalid credentials");
  }

  const std::string server_signature = hmac(hash_, keys_.server_key, auth_message);
  username_ = pending_username_;
  authzid_ = pending_authzid_;
  state_ = State::done;
  return Step::success("v=" + base64_encode(server_signature));
}

}  // namespace herald::sasl
