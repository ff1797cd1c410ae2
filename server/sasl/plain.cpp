#include "server/sasl/plain.hpp"

#include <openssl/crypto.h>

#include "server/xmpp/jid.hpp"

namespace herald::sasl {
namespace {

constexpr std::size_t kMaxMessage = 8192;

}  // namespace

PlainMechanism::PlainMechanism(std::uint32_t unknown_user_iterations)
    : unknown_user_iterations_(unknown_user_iterations > 0 ? unknown_user_iterations : 4096) {}

Step PlainMechanism::fail(Condition c, std::string text) {
  if (!password_.empty()) OPENSSL_cleanse(password_.data(), password_.size());
  password_.clear();
  state_ = State::done;
  return Step::failure(c, std::move(text));
}

Step PlainMechanism::step(std::string_view msg) {
  if (state_ == State::start && msg.empty()) {
    // No initial response: RFC 6120 §6.4.2 asks for an empty challenge.
    state_ = State::await_message;
    return Step::challenge({});
  }
  if (state_ != State::start && state_ != State::await_message) {
    return fail(Condition::malformed_request, "unexpected PLAIN message");
  }
  // message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 §2)
  if (msg.empty() || msg.size() > kMaxMessage) return fail(Condition::malformed_request, "bad PLAIN message");
  const auto nul1 = msg.find('\0');
  const auto nul2 = nul1 == std::string_view::npos ? nul1 : msg.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos || msg.find('\0', nul2 + 1) != std::string_view::npos) {
    return fail(Condition::malformed_request, "PLAIN message needs exactly two NULs");
  }
  const std::string_view authzid = msg.substr(0, nul1);
  const std::string_view authcid = msg.substr(nul1 + 1, nul2 - nul1 - 1);
  const std::string_view passwd = msg.substr(nul2 + 1);
  if (authcid.empty() || passwd.empty()) return fail(Condition::malformed_request, "empty authcid or password");
  if (!xmpp::is_valid_utf8(authzid) || !xmpp::is_valid_utf8(authcid) || !xmpp::is_valid_utf8(passwd)) {
    return fail(Condition::malformed_request, "PLAIN message is not UTF-8");
  }
  auto username = xmpp::prep_localpart(authcid);
  if (!username) return fail(Condition::not_authorized, "username failed preparation");
  auto password = prepare_password(passwd);
  if (!password) return fail(Condition::not_authorized, "invalid credentials");

  pending_username_ = *username;
  pending_authzid_ = std::string(authzid);
  password_ = std::move(*password);
  state_ = State::await_credentials;
  return Step::lookup(std::move(*username));
}

Step PlainMechanism::provide(const std::optional<Credentials>& creds) {
  if (state_ != State::await_credentials) {
    return fail(Condition::temporary_auth_failure, "provide() called out of sequence");
  }
  const ScramKeys* k = creds ? creds->strongest() : nullptr;
  bool ok = false;
  if (k != nullptr && k->iterations > 0 && !k->salt.empty() && k->stored_key.size() == hash_size(k->hash)) {
    const ScramKeys derived = derive_keys(k->hash, password_, k->salt, k->iterations);
    ok = constant_time_equal(derived.stored_key, k->stored_key);
  } else {
    // Unknown user: spend the same PBKDF2 work so timing does not tell.
    (void)derive_keys(Hash::sha512, password_, unknown_user_salt(Hash::sha512, pending_username_),
                      unknown_user_iterations_);
  }
  if (!ok) return fail(Condition::not_authorized, "invalid credentials");

  OPENSSL_cleanse(password_.data(), password_.size());
  password_.clear();
  username_ = pending_username_;
  authzid_ = pending_authzid_;
  state_ = State::done;
  return Step::success({});
}

}  // namespace herald::sasl
