#include "server/xml/stream_parser.hpp"

#include <expat.h>

#include <algorithm>
#include <cstring>
#include <limits>

// Expat 2.6 introduced reparse deferral (CVE-2023-52425): a token split across reads is
// not retried until "enough" new bytes arrive, which would stall a stanza whose last
// bytes came in a small read. It must be switched off for a network stream. Debian's
// Expat 2.5.0 has neither the feature nor the symbol; distributions that backport the
// fix to 2.5 keep the version number, so the build system also probes for the symbol
// (HERALD_EXPAT_HAS_REPARSE_DEFERRAL, see meson.build).
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6) || \
    defined(HERALD_EXPAT_HAS_REPARSE_DEFERRAL)
#define HERALD_DISABLE_REPARSE_DEFERRAL 1
#endif

namespace herald::xml {
namespace {

// Separates namespace URI and local name in names Expat reports. U+0001 is not an XML
// character, so it can never occur inside a namespace URI or a name.
constexpr char kNsSep = '\x01';

// Largest piece handed to Expat at once (its length argument is an int).
constexpr std::size_t kMaxPiece = 1u << 30;

struct QName {
  std::string_view uri;
  std::string_view local;
};

QName split_name(const char* expat_name) {
  std::string_view n(expat_name);
  std::size_t sep = n.find(kNsSep);
  if (sep == std::string_view::npos) return {{}, n};
  return {n.substr(0, sep), n.substr(sep + 1)};
}

// Attribute name in the form Element documents: "local", "xml:local", "{uri}local".
std::string attr_name(const char* expat_name) {
  QName q = split_name(expat_name);
  if (q.uri.empty()) return std::string(q.local);
  std::string out;
  if (q.uri == kXmlNamespace) {
    out.reserve(4 + q.local.size());
    out += "xml:";
  } else {
    out.reserve(q.uri.size() + q.local.size() + 2);
    out += '{';
    out += q.uri;
    out += '}';
  }
  out += q.local;
  return out;
}

bool is_xml_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

ErrorKind kind_for(XML_Error code) {
  switch (code) {
    case XML_ERROR_NO_MEMORY:
      return ErrorKind::policy_violation;
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
      return ErrorKind::unsupported_encoding;
    // DTD machinery; unreachable in practice because any DOCTYPE is refused first.
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_NOT_STANDALONE:
    case XML_ERROR_ENTITY_DECLARED_IN_PE:
    case XML_ERROR_FEATURE_REQUIRES_XML_DTD:
    case XML_ERROR_CANT_CHANGE_FEATURE_ONCE_PARSING:
      return ErrorKind::restricted_xml;
    default:
      return ErrorKind::not_well_formed;
  }
}

}  // namespace

// Expat C callbacks. Each one ignores events once the parser is dead (Expat may still
// deliver a few after XML_StopParser) and turns any exception into a dead parser, since
// unwinding through Expat's C frames would leave it in an unknown state.
struct StreamParser::Callbacks {
  template <class F>
  static void guarded(void* ud, F&& body) {
    auto* self = static_cast<StreamParser*>(ud);
    if (self->is_dead()) return;
    try {
      body(*self);
    } catch (...) {
      if (!self->handler_exception_) self->handler_exception_ = std::current_exception();
      self->fail(ErrorKind::bad_format, "exception while handling a stream event");
    }
  }

  // Runs a StreamHandler callback; marks it so suspend() knows it is allowed.
  template <class F>
  static void deliver(StreamParser& self, F&& call) {
    self.in_callback_ = true;
    try {
      call();
    } catch (...) {
      self.in_callback_ = false;
      throw;
    }
    self.in_callback_ = false;
  }

  static void on_xml_decl(void* ud, const XML_Char* /*version*/, const XML_Char* encoding,
                          int /*standalone*/) {
    // The parser was created with UTF-8 forced, which makes Expat ignore the declared
    // encoding; RFC 6120 section 11.6 wants the peer told instead.
    guarded(ud, [&](StreamParser& self) {
      if (encoding != nullptr && !iequals_ascii(encoding, "UTF-8")) {
        self.fail(ErrorKind::unsupported_encoding,
                  std::string("encoding '") + encoding + "' declared; only UTF-8 is allowed");
      }
    });
  }

  static void restricted(void* ud, const char* what) {
    guarded(ud, [&](StreamParser& self) {
      // After the stream's end tag nothing but whitespace may follow.
      ErrorKind kind = self.closed_ ? ErrorKind::not_well_formed : ErrorKind::restricted_xml;
      self.fail(kind, std::string(what) + " not allowed in an XML stream");
    });
  }

  static void on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    restricted(ud, "DTD (DOCTYPE)");
  }
  static void on_entity_decl(void* ud, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                             const XML_Char*, const XML_Char*, const XML_Char*) {
    restricted(ud, "entity declaration");
  }
  static void on_element_decl(void* ud, const XML_Char*, XML_Content* model) {
    auto* self = static_cast<StreamParser*>(ud);
    XML_FreeContentModel(self->parser_, model);  // ownership passes to the handler
    restricted(ud, "element declaration");
  }
  static void on_attlist_decl(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, const XML_Char*,
                              int) {
    restricted(ud, "attribute list declaration");
  }
  static void on_notation_decl(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, const XML_Char*) {
    restricted(ud, "notation declaration");
  }
  static void on_comment(void* ud, const XML_Char*) { restricted(ud, "comment"); }
  static void on_pi(void* ud, const XML_Char*, const XML_Char*) { restricted(ud, "processing instruction"); }

  static void on_ns_decl(void* ud, const XML_Char* prefix, const XML_Char* uri) {
    guarded(ud, [&](StreamParser& self) {
      std::string name = prefix != nullptr ? std::string("xmlns:") + prefix : std::string("xmlns");
      self.pending_decls_.emplace_back(std::move(name), uri != nullptr ? uri : "");
      // Checked here too so thousands of declarations are not collected first.
      if (self.pending_decls_.size() > self.limits_.max_attributes) {
        self.fail(ErrorKind::policy_violation, "too many attributes on one element (limit " +
                                                   std::to_string(self.limits_.max_attributes) + ")");
      }
    });
  }

  static void on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
    guarded(ud, [&](StreamParser& self) {
      std::size_t count = self.pending_decls_.size();
      for (const XML_Char** a = atts; *a != nullptr; a += 2) ++count;
      if (count > self.limits_.max_attributes) {
        self.fail(ErrorKind::policy_violation, "element has " + std::to_string(count) +
                                                   " attributes (limit " +
                                                   std::to_string(self.limits_.max_attributes) + ")");
        return;
      }
      // depth_ is the stanza depth the new element would have (the stanza root is 1).
      if (self.depth_ > 0 && self.depth_ > self.limits_.max_depth) {
        self.fail(ErrorKind::policy_violation,
                  "elements nested deeper than " + std::to_string(self.limits_.max_depth));
        return;
      }
      QName q = split_name(name);
      Element el{std::string(q.local), std::string(q.uri)};
      // Only the header keeps its declarations as attributes (the stream layer checks
      // them). Inside stanzas, ns() and "{uri}local" attribute names carry all namespace
      // information, so a stanza compares equal however its sender chose prefixes, and
      // parse -> serialize -> parse is exact.
      if (self.depth_ == 0) {
        for (auto& [decl, uri] : self.pending_decls_) el.set_attr(decl, std::move(uri));
      }
      self.pending_decls_.clear();
      for (const XML_Char** a = atts; *a != nullptr; a += 2) el.set_attr(attr_name(a[0]), a[1]);

      if (self.depth_ == 0) {
        self.depth_ = 1;
        self.unit_start_ = self.event_end();
        deliver(self, [&] { self.handler_.on_stream_open(std::move(el)); });
        return;
      }
      if (self.depth_ == 1) {
        XML_Index at = XML_GetCurrentByteIndex(self.parser_);
        if (at >= 0) self.unit_start_ = static_cast<std::uint64_t>(at);
        self.stanza_ = std::move(el);
        self.stack_.assign(1, &self.stanza_);
      } else {
        self.stack_.push_back(&self.stack_.back()->append(std::move(el)));
      }
      ++self.depth_;
    });
  }

  static void on_end(void* ud, const XML_Char*) {
    guarded(ud, [&](StreamParser& self) {
      if (self.depth_ == 1) {
        self.depth_ = 0;
        self.closed_ = true;
        // Only a self-closing header can get here after a suspend in on_stream_open; the
        // close is delivered by resume() so that nothing follows the suspending event.
        if (self.suspend_requested_) {
          self.deferred_close_ = true;
          return;
        }
        deliver(self, [&] { self.handler_.on_stream_close(); });
        return;
      }
      if (self.depth_ == 2) {
        self.depth_ = 1;
        self.stack_.clear();
        self.unit_start_ = self.event_end();
        Element stanza = std::move(self.stanza_);
        self.stanza_ = Element();
        deliver(self, [&] { self.handler_.on_stanza(std::move(stanza)); });
        return;
      }
      if (self.depth_ > 2) {
        self.stack_.pop_back();
        --self.depth_;
      }
    });
  }

  static void on_text(void* ud, const XML_Char* s, int len) {
    guarded(ud, [&](StreamParser& self) {
      std::string_view text(s, static_cast<std::size_t>(len));
      if (self.depth_ >= 2) {
        self.stack_.back()->add_text(std::string(text));
      } else if (self.depth_ == 1) {
        if (!is_xml_space(text)) {
          // Report where the offending character is, not where Expat's text run began:
          // the run's start depends on how the input was chunked, the character's does not.
          auto line = XML_GetCurrentLineNumber(self.parser_);
          auto column = XML_GetCurrentColumnNumber(self.parser_);
          for (char c : text) {
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
            if (c == '\n') {
              ++line;
              column = 0;
            } else {
              ++column;
            }
          }
          self.fail(ErrorKind::not_well_formed, "character data between stanzas (line " +
                                                    std::to_string(line) + ", column " +
                                                    std::to_string(column) + ")");
          return;
        }
        // Keepalive whitespace starts no stanza; don't let it count against the next one.
        self.unit_start_ = std::max(self.unit_start_, self.event_end());
      }
    });
  }
};

StreamParser::StreamParser(StreamHandler& handler, Limits limits) : handler_(handler), limits_(limits) {
  const XML_Char sep = kNsSep;
  parser_ = XML_ParserCreateNS("UTF-8", sep);
  if (parser_ == nullptr) {
    error_ = Error{ErrorKind::policy_violation, "cannot create XML parser (out of memory)"};
    return;
  }
  XML_SetUserData(parser_, this);
#ifdef HERALD_DISABLE_REPARSE_DEFERRAL
  XML_SetReparseDeferralEnabled(parser_, XML_FALSE);
#endif
  XML_SetParamEntityParsing(parser_, XML_PARAM_ENTITY_PARSING_NEVER);
  XML_SetXmlDeclHandler(parser_, &Callbacks::on_xml_decl);
  XML_SetStartDoctypeDeclHandler(parser_, &Callbacks::on_doctype);
  XML_SetEntityDeclHandler(parser_, &Callbacks::on_entity_decl);
  XML_SetElementDeclHandler(parser_, &Callbacks::on_element_decl);
  XML_SetAttlistDeclHandler(parser_, &Callbacks::on_attlist_decl);
  XML_SetNotationDeclHandler(parser_, &Callbacks::on_notation_decl);
  XML_SetCommentHandler(parser_, &Callbacks::on_comment);
  XML_SetProcessingInstructionHandler(parser_, &Callbacks::on_pi);
  XML_SetStartNamespaceDeclHandler(parser_, &Callbacks::on_ns_decl);
  XML_SetElementHandler(parser_, &Callbacks::on_start, &Callbacks::on_end);
  XML_SetCharacterDataHandler(parser_, &Callbacks::on_text);
}

StreamParser::~StreamParser() {
  if (parser_ != nullptr) XML_ParserFree(parser_);
}

void StreamParser::set_limits(const Limits& limits) { limits_ = limits; }

std::uint64_t StreamParser::event_end() const {
  XML_Index at = XML_GetCurrentByteIndex(parser_);
  if (at < 0) return unit_start_;
  return static_cast<std::uint64_t>(at) + static_cast<std::uint64_t>(XML_GetCurrentByteCount(parser_));
}

std::string StreamParser::position() const {
  return " (line " + std::to_string(XML_GetCurrentLineNumber(parser_)) + ", column " +
         std::to_string(XML_GetCurrentColumnNumber(parser_)) + ")";
}

void StreamParser::fail(ErrorKind kind, std::string detail) {
  if (error_) return;
  error_ = Error{kind, std::move(detail)};
  // Harmless outside a parse call; inside one it makes Expat return at once.
  if (parser_ != nullptr) XML_StopParser(parser_, XML_FALSE);
}

std::size_t StreamParser::allowance() const {
  // After the stream's end tag Expat only accepts whitespace and buffers nothing.
  if (closed_) return std::numeric_limits<std::size_t>::max();
  std::uint64_t used = fed_ - unit_start_;
  if (used >= limits_.max_stanza_bytes) return 0;
  return static_cast<std::size_t>(limits_.max_stanza_bytes - used);
}

void StreamParser::rethrow_if_pending() {
  if (handler_exception_) {
    std::exception_ptr e = std::move(handler_exception_);
    handler_exception_ = nullptr;
    std::rethrow_exception(e);
  }
}

Status StreamParser::finish_expat_error() {
  if (!error_) {
    XML_Error code = XML_GetErrorCode(parser_);
    error_ = Error{kind_for(code), std::string(XML_ErrorString(code)) + position()};
  }
  return Status::error;
}

Status StreamParser::feed(std::string_view bytes) {
  if (is_dead()) return Status::error;
  if (in_callback_) {
    fail(ErrorKind::bad_format, "StreamParser::feed() called from a stream handler callback");
    return Status::error;
  }
  if (expat_suspended_) {
    kept_.append(bytes);
    return Status::suspended;
  }
  return run(bytes);
}

Status StreamParser::run(std::string_view bytes) {
  while (!bytes.empty()) {
    // Hand Expat no more than the current unit may still grow by: an oversized stanza,
    // start tag or attribute value is refused before Expat buffers past the limit, and
    // units that complete inside this piece move unit_start_ on for the next piece.
    std::size_t n = std::min({bytes.size(), allowance(), kMaxPiece});
    if (n == 0) {
      fail(ErrorKind::policy_violation, std::string(depth_ == 0 ? "stream header" : "stanza") +
                                            " larger than " + std::to_string(limits_.max_stanza_bytes) +
                                            " bytes");
      return Status::error;
    }
    void* buf = XML_GetBuffer(parser_, static_cast<int>(n));
    if (buf == nullptr) return finish_expat_error();
    std::memcpy(buf, bytes.data(), n);
    fed_ += n;
    bytes.remove_prefix(n);
    suspend_requested_ = false;
    XML_Status st = XML_ParseBuffer(parser_, static_cast<int>(n), XML_FALSE);
    rethrow_if_pending();
    if (st == XML_STATUS_ERROR) return finish_expat_error();
    if (st == XML_STATUS_SUSPENDED) {
      expat_suspended_ = true;
      kept_.assign(bytes);
      return Status::suspended;
    }
  }
  return Status::ok;
}

Status StreamParser::resume() {
  if (is_dead()) return Status::error;
  if (in_callback_) {
    fail(ErrorKind::bad_format, "StreamParser::resume() called from a stream handler callback");
    return Status::error;
  }
  if (!expat_suspended_) return Status::ok;
  suspend_requested_ = false;
  if (deferred_close_) {
    deferred_close_ = false;
    Callbacks::guarded(this, [&](StreamParser& self) {
      Callbacks::deliver(self, [&] { self.handler_.on_stream_close(); });
    });
    rethrow_if_pending();
    if (is_dead()) return Status::error;
    if (suspend_requested_) return Status::suspended;  // Expat is still suspended
  }
  expat_suspended_ = false;
  XML_Status st = XML_ResumeParser(parser_);
  rethrow_if_pending();
  if (st == XML_STATUS_ERROR) return finish_expat_error();
  if (st == XML_STATUS_SUSPENDED) {
    expat_suspended_ = true;
    return Status::suspended;
  }
  std::string rest = std::move(kept_);
  kept_.clear();
  return run(rest);
}

void StreamParser::suspend() {
  if (!in_callback_ || is_dead() || suspend_requested_) return;
  suspend_requested_ = true;
  // During a deferred delivery from resume() Expat is already suspended.
  if (!expat_suspended_) XML_StopParser(parser_, XML_TRUE);
}

}  // namespace herald::xml
