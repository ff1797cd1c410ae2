#include "server/xmpp/jid.hpp"

#include <arpa/inet.h>

#include <functional>
#include <string>

#include <unicode/normalizer2.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/uidna.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/utf16.h>

namespace herald::xmpp {
namespace {

// Preparation never shrinks a string by more than a small factor, so anything much
// longer than the 1023-octet limit can be refused before spending CPU on it.
constexpr std::size_t kMaxRawPart = 8 * kMaxJidPart;

// Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
std::optional<std::u32string> decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    std::size_t len;
    char32_t cp;
    char32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (s.size() - i < len) return std::nullopt;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

icu::UnicodeString to_icu(const std::u32string& s) {
  icu::UnicodeString u;
  for (char32_t cp : s) u.append(static_cast<UChar32>(cp));
  return u;
}

std::u32string from_icu(const icu::UnicodeString& u) {
  std::u32string out;
  const char16_t* buf = u.getBuffer();
  const int32_t n = u.length();
  for (int32_t i = 0; i < n;) {
    UChar32 cp;
    U16_NEXT(buf, i, n, cp);
    out.push_back(static_cast<char32_t>(cp));
  }
  return out;
}

const icu::Normalizer2* nfc() {
  UErrorCode ec = U_ZERO_ERROR;
  static const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(ec);
  return n;
}
const icu::Normalizer2* nfkc() {
  UErrorCode ec = U_ZERO_ERROR;
  static const icu::Normalizer2* n = icu::Normalizer2::getNFKCInstance(ec);
  return n;
}
const icu::Normalizer2* nfkd() {
  UErrorCode ec = U_ZERO_ERROR;
  static const icu::Normalizer2* n = icu::Normalizer2::getNFKDInstance(ec);
  return n;
}

std::optional<std::u32string> normalize_nfc(const std::u32string& s) {
  const auto* n = nfc();
  if (n == nullptr) return std::nullopt;
  UErrorCode ec = U_ZERO_ERROR;
  icu::UnicodeString out = n->normalize(to_icu(s), ec);
  if (U_FAILURE(ec)) return std::nullopt;
  return from_icu(out);
}

// ---- PRECIS derived property (RFC 8264 §8) ----

enum class Prop { pvalid, free_pval, contextj, contexto, disallowed, unassigned };

bool has_compat(char32_t cp) {
  const auto* n = nfkc();
  if (n == nullptr) return true;  // fail closed: treat as not identifier-safe
  UErrorCode ec = U_ZERO_ERROR;
  const bool normalized = n->isNormalized(icu::UnicodeString(static_cast<UChar32>(cp)), ec);
  return U_FAILURE(ec) || !normalized;
}

Prop derive(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  // Exceptions (F), RFC 5892 §2.6.
  switch (cp) {
    case 0x00DF: case 0x03C2: case 0x06FD: case 0x06FE: case 0x0F0B: case 0x3007:
      return Prop::pvalid;
    case 0x00B7: case 0x0375: case 0x05F3: case 0x05F4: case 0x30FB:
      return Prop::contexto;
    case 0x0640: case 0x07FA: case 0x302E: case 0x302F: case 0x303B:
      return Prop::disallowed;
    default:
      break;
  }
  if (cp >= 0x3031 && cp <= 0x3035) return Prop::disallowed;
  if ((cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06F0 && cp <= 0x06F9)) return Prop::contexto;
  // BackwardCompatible (G) is empty.
  const int8_t gc = u_charType(c);
  const bool nonchar = u_hasBinaryProperty(c, UCHAR_NONCHARACTER_CODE_POINT);
  if (gc == U_UNASSIGNED && !nonchar) return Prop::unassigned;
  if (cp >= 0x21 && cp <= 0x7E) return Prop::pvalid;
  if (u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) return Prop::contextj;
  const auto hst = u_getIntPropertyValue(c, UCHAR_HANGUL_SYLLABLE_TYPE);
  if (hst == U_HST_LEADING_JAMO || hst == U_HST_VOWEL_JAMO || hst == U_HST_TRAILING_JAMO) {
    return Prop::disallowed;
  }
  if (nonchar || u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) return Prop::disallowed;
  if (gc == U_CONTROL_CHAR) return Prop::disallowed;
  if (has_compat(cp)) return Prop::free_pval;
  switch (gc) {
    case U_LOWERCASE_LETTER: case U_UPPERCASE_LETTER: case U_OTHER_LETTER:
    case U_DECIMAL_DIGIT_NUMBER: case U_MODIFIER_LETTER: case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
      return Prop::pvalid;
    case U_TITLECASE_LETTER: case U_LETTER_NUMBER: case U_OTHER_NUMBER: case U_ENCLOSING_MARK:
    case U_SPACE_SEPARATOR:
    case U_MATH_SYMBOL: case U_CURRENCY_SYMBOL: case U_MODIFIER_SYMBOL: case U_OTHER_SYMBOL:
    case U_CONNECTOR_PUNCTUATION: case U_DASH_PUNCTUATION: case U_START_PUNCTUATION:
    case U_END_PUNCTUATION: case U_INITIAL_PUNCTUATION: case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
      return Prop::free_pval;
    default:
      return Prop::disallowed;
  }
}

bool is_virama(char32_t cp) { return u_getCombiningClass(static_cast<UChar32>(cp)) == 9; }

int joining_type(char32_t cp) {
  return u_getIntPropertyValue(static_cast<UChar32>(cp), UCHAR_JOINING_TYPE);
}

UScriptCode script_of(char32_t cp) {
  UErrorCode ec = U_ZERO_ERROR;
  const UScriptCode sc = uscript_getScript(static_cast<UChar32>(cp), &ec);
  return U_FAILURE(ec) ? USCRIPT_INVALID_CODE : sc;
}

// Contextual rules of RFC 5892 Appendix A.
bool context_ok(const std::u32string& s, std::size_t i) {
  const char32_t cp = s[i];
  const char32_t prev = i > 0 ? s[i - 1] : 0;
  const char32_t next = i + 1 < s.size() ? s[i + 1] : 0;
  switch (cp) {
    case 0x200C: {  // ZERO WIDTH NON-JOINER
      if (i > 0 && is_virama(prev)) return true;
      // (Joining_Type:{L,D})(Joining_Type:T)* ZWNJ (Joining_Type:T)*(Joining_Type:{R,D})
      std::size_t j = i;
      bool left = false;
      while (j > 0) {
        const int jt = joining_type(s[--j]);
        if (jt == U_JT_TRANSPARENT) continue;
        left = jt == U_JT_LEFT_JOINING || jt == U_JT_DUAL_JOINING;
        break;
      }
      if (!left) return false;
      for (j = i + 1; j < s.size(); ++j) {
        const int jt = joining_type(s[j]);
        if (jt == U_JT_TRANSPARENT) continue;
        return jt == U_JT_RIGHT_JOINING || jt == U_JT_DUAL_JOINING;
      }
      return false;
    }
    case 0x200D:  // ZERO WIDTH JOINER
      return i > 0 && is_virama(prev);
    case 0x00B7:  // MIDDLE DOT: only in Catalan "l·l"
      return prev == 0x6C && next == 0x6C;
    case 0x0375:  // GREEK LOWER NUMERAL SIGN
      return i + 1 < s.size() && script_of(next) == USCRIPT_GREEK;
    case 0x05F3: case 0x05F4:  // HEBREW GERESH / GERSHAYIM
      return i > 0 && script_of(prev) == USCRIPT_HEBREW;
    case 0x30FB:  // KATAKANA MIDDLE DOT
      for (char32_t o : s) {
        const auto sc = script_of(o);
        if (sc == USCRIPT_HIRAGANA || sc == USCRIPT_KATAKANA || sc == USCRIPT_HAN) return true;
      }
      return false;
    default:
      break;
  }
  if (cp >= 0x0660 && cp <= 0x0669) {
    for (char32_t o : s) if (o >= 0x06F0 && o <= 0x06F9) return false;
    return true;
  }
  if (cp >= 0x06F0 && cp <= 0x06F9) {
    for (char32_t o : s) if (o >= 0x0660 && o <= 0x0669) return false;
    return true;
  }
  return false;  // a contextual code point without a rule is invalid
}

enum class StringClass { identifier, freeform };

bool class_ok(const std::u32string& s, StringClass cls) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    switch (derive(s[i])) {
      case Prop::pvalid:
        break;
      case Prop::free_pval:
        if (cls == StringClass::identifier) return false;
        break;
      case Prop::contextj:
      case Prop::contexto:
        if (!context_ok(s, i)) return false;
        break;
      case Prop::disallowed:
      case Prop::unassigned:
        return false;
    }
  }
  return true;
}

// The Bidi Rule of RFC 5893 §2, applied only to strings with right-to-left code points.
bool bidi_ok(const std::u32string& s) {
  bool rtl = false;
  for (char32_t cp : s) {
    const auto d = u_charDirection(static_cast<UChar32>(cp));
    if (d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC || d == U_ARABIC_NUMBER) rtl = true;
  }
  if (!rtl || s.empty()) return true;
  const auto first = u_charDirection(static_cast<UChar32>(s.front()));
  if (first == U_LEFT_TO_RIGHT) {
    std::optional<UCharDirection> last;
    for (char32_t cp : s) {
      const auto d = u_charDirection(static_cast<UChar32>(cp));
      switch (d) {
        case U_LEFT_TO_RIGHT: case U_EUROPEAN_NUMBER: case U_EUROPEAN_NUMBER_SEPARATOR:
        case U_COMMON_NUMBER_SEPARATOR: case U_EUROPEAN_NUMBER_TERMINATOR: case U_OTHER_NEUTRAL:
        case U_BOUNDARY_NEUTRAL:
          last = d;
          break;
        case U_DIR_NON_SPACING_MARK:
          break;
        default:
          return false;
      }
    }
    return last && (*last == U_LEFT_TO_RIGHT || *last == U_EUROPEAN_NUMBER);
  }
  if (first != U_RIGHT_TO_LEFT && first != U_RIGHT_TO_LEFT_ARABIC) return false;
  bool en = false;
  bool an = false;
  std::optional<UCharDirection> last;
  for (char32_t cp : s) {
    const auto d = u_charDirection(static_cast<UChar32>(cp));
    switch (d) {
      case U_RIGHT_TO_LEFT: case U_RIGHT_TO_LEFT_ARABIC: case U_EUROPEAN_NUMBER_SEPARATOR:
      case U_COMMON_NUMBER_SEPARATOR: case U_EUROPEAN_NUMBER_TERMINATOR: case U_OTHER_NEUTRAL:
      case U_BOUNDARY_NEUTRAL:
        last = d;
        break;
      case U_ARABIC_NUMBER:
        an = true;
        last = d;
        break;
      case U_EUROPEAN_NUMBER:
        en = true;
        last = d;
        break;
      case U_DIR_NON_SPACING_MARK:
        break;
      default:
        return false;
    }
  }
  if (en && an) return false;
  return last && (*last == U_RIGHT_TO_LEFT || *last == U_RIGHT_TO_LEFT_ARABIC ||
                  *last == U_EUROPEAN_NUMBER || *last == U_ARABIC_NUMBER);
}

std::u32string width_map(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* n = nfkd();
  for (char32_t cp : s) {
    const auto dt = u_getIntPropertyValue(static_cast<UChar32>(cp), UCHAR_DECOMPOSITION_TYPE);
    icu::UnicodeString dec;
    if ((dt == U_DT_WIDE || dt == U_DT_NARROW) && n != nullptr &&
        n->getDecomposition(static_cast<UChar32>(cp), dec)) {
      out += from_icu(dec);
    } else {
      out.push_back(cp);
    }
  }
  return out;
}

// Per code point so that no context-sensitive mapping (Final_Sigma) applies: RFC 7622
// §3.5 expects U+03A3 to map to U+03C3 wherever it occurs.
std::u32string lower_map(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t cp : s) {
    icu::UnicodeString one(static_cast<UChar32>(cp));
    one.toLower(icu::Locale::getRoot());
    out += from_icu(one);
  }
  return out;
}

std::optional<std::u32string> username_case_mapped_once(const std::u32string& in) {
  // Preparation (RFC 8265 §3.3.2): width mapping, then IdentifierClass check.
  std::u32string s = width_map(in);
  if (!class_ok(s, StringClass::identifier)) return std::nullopt;
  // Enforcement (§3.3.3): case mapping, NFC, Bidi Rule.
  auto n = normalize_nfc(lower_map(s));
  if (!n || !class_ok(*n, StringClass::identifier) || !bidi_ok(*n)) return std::nullopt;
  return n;
}

std::optional<std::u32string> opaque_string_once(const std::u32string& in) {
  if (!class_ok(in, StringClass::freeform)) return std::nullopt;
  std::u32string s = in;
  for (char32_t& cp : s) {
    if (cp != 0x20 && u_charType(static_cast<UChar32>(cp)) == U_SPACE_SEPARATOR) cp = 0x20;
  }
  auto n = normalize_nfc(s);
  if (!n || !class_ok(*n, StringClass::freeform)) return std::nullopt;
  return n;
}

// RFC 8264 §7: re-apply until stable, giving up after three extra rounds.
template <typename F>
std::optional<std::string> apply_stable(std::string_view input, F once) {
  if (input.empty() || input.size() > kMaxRawPart) return std::nullopt;
  auto decoded = decode_utf8(input);
  if (!decoded) return std::nullopt;
  auto cur = once(*decoded);
  for (int round = 0; cur && round < 4; ++round) {
    auto next = once(*cur);
    if (!next) return std::nullopt;
    if (*next == *cur) {
      std::string out = encode_utf8(*cur);
      if (out.empty() || out.size() > kMaxJidPart) return std::nullopt;
      return out;
    }
    cur = std::move(next);
  }
  return std::nullopt;
}

const UIDNA* uts46() {
  static const UIDNA* idna = [] {
    UErrorCode ec = U_ZERO_ERROR;
    UIDNA* p = uidna_openUTS46(UIDNA_USE_STD3_RULES | UIDNA_CHECK_BIDI | UIDNA_CHECK_CONTEXTJ |
                                   UIDNA_CHECK_CONTEXTO | UIDNA_NONTRANSITIONAL_TO_ASCII |
                                   UIDNA_NONTRANSITIONAL_TO_UNICODE,
                               &ec);
    return U_FAILURE(ec) ? nullptr : p;
  }();
  return idna;
}

bool idna_call(bool to_ascii, std::string_view in, std::string& out) {
  const UIDNA* idna = uts46();
  if (idna == nullptr) return false;
  out.assign(4 * in.size() + 64, '\0');
  UIDNAInfo info = UIDNA_INFO_INITIALIZER;
  UErrorCode ec = U_ZERO_ERROR;
  const auto len = static_cast<int32_t>(in.size());
  const auto cap = static_cast<int32_t>(out.size());
  const int32_t n = to_ascii ? uidna_nameToASCII_UTF8(idna, in.data(), len, out.data(), cap, &info, &ec)
                             : uidna_nameToUnicodeUTF8(idna, in.data(), len, out.data(), cap, &info, &ec);
  if (U_FAILURE(ec) || info.errors != 0 || n < 0 || n > cap) return false;
  out.resize(static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> prep_ip_literal(std::string_view in) {
  if (in.size() < 3 || in.back() != ']') return std::nullopt;
  const std::string inner(in.substr(1, in.size() - 2));
  in6_addr addr{};
  if (inet_pton(AF_INET6, inner.c_str(), &addr) != 1) return std::nullopt;  // no zone ids
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &addr, buf, sizeof buf) == nullptr) return std::nullopt;
  return "[" + std::string(buf) + "]";
}

void hash_combine(std::size_t& seed, std::size_t h) {
  seed ^= h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
}

}  // namespace

std::optional<std::string> prep_localpart(std::string_view in) {
  auto out = apply_stable(in, username_case_mapped_once);
  if (!out) return std::nullopt;
  if (out->find_first_of("\"&'/:<>@") != std::string::npos) return std::nullopt;
  return out;
}

bool is_valid_utf8(std::string_view in) { return decode_utf8(in).has_value(); }

std::optional<std::string> prep_opaque_string(std::string_view in) {
  return apply_stable(in, opaque_string_once);
}

std::optional<std::string> prep_resource(std::string_view in) {
  auto out = prep_opaque_string(in);
  if (!out || out->front() == ' ') return std::nullopt;
  return out;
}

std::optional<std::string> prep_domain(std::string_view in) {
  if (in.empty() || in.size() > kMaxRawPart) return std::nullopt;
  // RFC 7622 §3.2: strip one trailing dot before any other canonicalisation.
  if (in.back() == '.') in.remove_suffix(1);
  if (in.empty()) return std::nullopt;
  if (in.front() == '[') return prep_ip_literal(in);
  if (!decode_utf8(in)) return std::nullopt;
  {
    const std::string s(in);
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return s;
  }
  std::string unicode;
  std::string ascii;
  // toASCII as well, because only it reports the DNS label and name length limits.
  if (!idna_call(false, in, unicode) || !idna_call(true, in, ascii)) return std::nullopt;
  if (unicode.empty() || unicode.size() > kMaxJidPart || unicode.front() == '.' ||
      unicode.back() == '.' || unicode.find("..") != std::string::npos) {
    return std::nullopt;
  }
  // UTS #46 still lets through some code points IDNA2008 disallows (symbols and the
  // like); keep U-labels to letters, digits and marks.
  auto cps = decode_utf8(unicode);
  if (!cps) return std::nullopt;
  for (char32_t cp : *cps) {
    if (cp < 0x80) continue;  // STD3 rules already limited ASCII to LDH and '.'
    const auto p = derive(cp);
    if (p != Prop::pvalid && p != Prop::contexto && p != Prop::contextj) return std::nullopt;
  }
  return unicode;
}

std::optional<Jid> Jid::parse(std::string_view s) {
  if (s.empty() || s.size() > 3 * kMaxRawPart) return std::nullopt;
  std::string_view rest = s;
  std::string_view resource;
  bool has_resource = false;
  if (const auto slash = s.find('/'); slash != std::string_view::npos) {
    rest = s.substr(0, slash);
    resource = s.substr(slash + 1);
    has_resource = true;
  }
  std::string_view local;
  std::string_view domain = rest;
  bool has_local = false;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    local = rest.substr(0, at);
    domain = rest.substr(at + 1);
    has_local = true;
  }
  // An explicit separator with nothing after/before it is an empty part, not an absent one.
  if ((has_local && local.empty()) || (has_resource && resource.empty())) return std::nullopt;
  return make(local, domain, resource);
}

std::optional<Jid> Jid::make(std::string_view local, std::string_view domain,
                             std::string_view resource) {
  Jid j;
  auto d = prep_domain(domain);
  if (!d) return std::nullopt;
  j.domain_ = std::move(*d);
  if (!local.empty()) {
    auto l = prep_localpart(local);
    if (!l) return std::nullopt;
    j.local_ = std::move(*l);
  }
  if (!resource.empty()) {
    auto r = prep_resource(resource);
    if (!r) return std::nullopt;
    j.resource_ = std::move(*r);
  }
  return j;
}

Jid Jid::bare() const {
  Jid j = *this;
  j.resource_.clear();
  return j;
}

Jid Jid::domain_jid() const {
  Jid j;
  j.domain_ = domain_;
  return j;
}

std::optional<Jid> Jid::with_resource(std::string_view resource) const {
  if (empty()) return std::nullopt;
  auto r = prep_resource(resource);
  if (!r) return std::nullopt;
  Jid j = *this;
  j.resource_ = std::move(*r);
  return j;
}

std::string Jid::bare_str() const {
  if (local_.empty()) return domain_;
  std::string out;
  out.reserve(local_.size() + 1 + domain_.size());
  out += local_;
  out += '@';
  out += domain_;
  return out;
}

std::string Jid::str() const {
  std::string out = bare_str();
  if (!resource_.empty()) {
    out += '/';
    out += resource_;
  }
  return out;
}

std::size_t JidHash::operator()(const Jid& j) const noexcept {
  std::size_t seed = std::hash<std::string>{}(j.local());
  hash_combine(seed, std::hash<std::string>{}(j.domain()));
  hash_combine(seed, std::hash<std::string>{}(j.resource()));
  return seed;
}

}  // namespace herald::xmpp
