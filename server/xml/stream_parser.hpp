#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/xml/element.hpp"

struct XML_ParserStruct;  // Expat's parser; kept out of this header

namespace herald::xml {

struct Limits {
  // Largest top-level unit: one stanza (depth-1 element) from its '<' to the end of its
  // end tag, or the stream header including anything before it. Enforced on bytes fed,
  // before the unit completes, so the parser never holds much more than this.
  std::size_t max_stanza_bytes = 256 * 1024;
  std::size_t max_depth = 32;       // nesting within a stanza; the stanza root is depth 1
  std::size_t max_attributes = 64;  // per element, namespace declarations included
};

enum class ErrorKind { not_well_formed, restricted_xml, policy_violation, unsupported_encoding, bad_format };

struct Error {
  ErrorKind kind;
  std::string detail;  // readable, for logs and stream error text
};

// Receives the events of one XML stream. Elements are handed over by value: the
// handler owns them.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  virtual void on_stream_open(Element header) = 0;  // the depth-0 element's start tag
  virtual void on_stanza(Element stanza) = 0;       // each complete depth-1 element
  virtual void on_stream_close() = 0;               // the depth-0 end tag
};

enum class Status { ok, suspended, error };

// Incremental XMPP stream parser over Expat (namespace processing on, UTF-8 only,
// restricted XML per RFC 6120 section 11.1).
//
// Feed bytes as they come off the socket, split anywhere: the events are the same for
// every split of the input. The header element carries its namespace declarations as
// attributes "xmlns" and "xmlns:PREFIX". Inside stanzas namespace declarations are not
// attributes: an element's namespace is its ns() and a namespaced attribute is named
// "{uri}local" (see Element), so prefixes chosen by the sender do not matter. (Prefixes
// used inside attribute values or text, QName-style, are therefore not resolvable.)
//
// Errors: the first error is recorded in error() and the parser is dead from then on:
// feed() and resume() return Status::error without calling the handler. Input after the
// stream's end tag may only be whitespace.
//
// Suspension, for elements that change how the rest of the bytes must be read
// (<starttls/>, a SASL <auth/> after which the stream restarts): a handler calls
// suspend() from inside its callback; no further event is delivered, and the pending
// feed() (or resume()) returns Status::suspended. The unparsed rest of that chunk is
// kept. The owner then either calls resume(), which delivers the remaining events of the
// chunk exactly as if there had been no pause, or simply destroys the parser (stream
// restart: a new parser is built and the kept bytes are discarded, which is what
// STARTTLS requires). Destroying a suspended parser is safe. feed() while suspended only
// queues the bytes behind the kept ones and returns Status::suspended.
//
// Not re-entrant: do not call feed()/resume() or destroy the parser from inside a
// callback. If a handler throws, the parser becomes dead (bad_format) and the exception
// propagates out of feed()/resume().
class StreamParser {
 public:
  StreamParser(StreamHandler& handler, Limits limits);
  ~StreamParser();
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;
  StreamParser(StreamParser&&) = delete;
  StreamParser& operator=(StreamParser&&) = delete;

  Status feed(std::string_view bytes);    // parse bytes as they arrive from the socket
  Status resume();                        // continue a suspended parse of the last chunk
  void suspend();                         // ONLY from inside a handler callback: stop after this event
  void set_limits(const Limits& limits);  // e.g. raise the stanza limit after authentication
  const std::optional<Error>& error() const { return error_; }  // set once

 private:
  struct Callbacks;  // Expat callbacks (stream_parser.cpp)
  friend struct Callbacks;

  Status run(std::string_view bytes);
  Status finish_expat_error();
  void fail(ErrorKind kind, std::string detail);
  std::string position() const;
  std::size_t allowance() const;
  std::uint64_t event_end() const;  // stream offset just past the current Expat event
  bool is_dead() const { return error_.has_value(); }
  void rethrow_if_pending();

  StreamHandler& handler_;
  Limits limits_;
  XML_ParserStruct* parser_ = nullptr;
  std::optional<Error> error_;

  // Tree under construction: stack_[0] is &stanza_, each next entry the last child of
  // the previous one, so appending to stack_.back() never moves anything on the stack.
  Element stanza_;
  std::vector<Element*> stack_;
  std::size_t depth_ = 0;  // Expat element depth: 1 inside the header, 2 inside a stanza root
  bool closed_ = false;    // the stream's end tag was seen

  // Namespace declarations reported for the next start tag.
  std::vector<std::pair<std::string, std::string>> pending_decls_;

  // Byte accounting in stream offsets: bytes handed to Expat so far, and where the
  // current top-level unit began (the stanza's '<', or the end of the previous unit).
  std::uint64_t fed_ = 0;
  std::uint64_t unit_start_ = 0;

  bool in_callback_ = false;
  bool expat_suspended_ = false;    // Expat needs XML_ResumeParser before more input
  bool suspend_requested_ = false;  // a handler asked to stop during this parse call
  bool deferred_close_ = false;     // stream end seen while suspending (self-closing header)
  std::string kept_;                // unparsed rest of the chunk while suspended
  std::exception_ptr handler_exception_;
};

}  // namespace herald::xml
