// XMPP addresses (RFC 7622) and the PRECIS profiles they are built on (RFC 8264/8265).
// Every function here takes untrusted input: bad input yields std::nullopt, never an
// assertion or exception.
#pragma once

#include <compare>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace herald::xmpp {

// Each JID part is limited to 1023 octets after preparation (RFC 7622 §3.1).
inline constexpr std::size_t kMaxJidPart = 1023;

// PRECIS UsernameCaseMapped (RFC 8265 §3.3) plus the characters RFC 7622 §3.3.1
// excludes from localparts: " & ' / : < > @. Also used for SASL usernames.
std::optional<std::string> prep_localpart(std::string_view);
// Domainpart (RFC 7622 §3.2): one trailing dot stripped, UTS #46 mapping (lowercase,
// width, NFC), A-labels converted to U-labels, STD3/IDNA label checks and DNS length
// limits. IPv4 literals are kept; IPv6 literals ("[...]") are canonicalised.
std::optional<std::string> prep_domain(std::string_view);
// Resourcepart: PRECIS OpaqueString (RFC 8265 §4.2). A leading SPACE is also rejected,
// as RFC 7622 §3.5 example 18 requires.
std::optional<std::string> prep_resource(std::string_view);
// PRECIS OpaqueString without any JID-specific rule; used for passwords.
std::optional<std::string> prep_opaque_string(std::string_view);
// Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view);

class Jid {
 public:
  Jid() = default;

  // Splits per RFC 7622 §3.1/§3.2 (first '/' ends the domain, then first '@' ends the
  // localpart) before any mapping, then prepares each part.
  static std::optional<Jid> parse(std::string_view);
  // Empty local or resource means "absent"; the domain is required.
  static std::optional<Jid> make(std::string_view local, std::string_view domain,
                                 std::string_view resource = {});

  const std::string& local() const { return local_; }
  const std::string& domain() const { return domain_; }
  const std::string& resource() const { return resource_; }

  bool empty() const { return domain_.empty(); }
  bool is_bare() const { return resource_.empty(); }
  bool is_domain() const { return local_.empty() && resource_.empty(); }

  Jid bare() const;
  Jid domain_jid() const;
  // nullopt if the resource fails preparation (including empty).
  std::optional<Jid> with_resource(std::string_view) const;

  std::string str() const;
  std::string bare_str() const;

  friend bool operator==(const Jid&, const Jid&) = default;
  friend auto operator<=>(const Jid&, const Jid&) = default;

 private:
  std::string local_;
  std::string domain_;
  std::string resource_;
};

struct JidHash {
  std::size_t operator()(const Jid&) const noexcept;
};

}  // namespace herald::xmpp
