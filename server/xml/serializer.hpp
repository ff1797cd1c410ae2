#pragma once

#include <string>
#include <string_view>

#include "server/xml/element.hpp"

namespace herald::xml {

// Writes an element (or text node) as XML. `xmlns='...'` is written only where an
// element's namespace differs from its parent's, so a jabber:client stanza written into
// a c2s stream carries no xmlns, while the same stanza written with parent_ns
// "jabber:server" gets one. Elements are always written unprefixed (default namespace);
// "xml:*" and "xmlns:*" attributes are written as is; "{uri}local" attributes get a
// generated prefix declared on the same element. An "xmlns" attribute, if someone set
// one, is skipped: ns() is the only source of the default namespace, so it can never be
// written twice or disagree with the element's real namespace.
//
// Text is escaped (&, <, >, and CR so it survives end-of-line normalization); attribute
// values are escaped (&, <, >, ', ", and TAB/LF/CR so they survive attribute value
// normalization). Elements without children self-close.
std::string serialize(const Element& element, std::string_view parent_ns = "jabber:client");

// Appends to `out`; this is the hot path (every routed stanza), so nothing is built per
// node: the caller can reuse one buffer.
void serialize_to(std::string& out, const Element& element, std::string_view parent_ns);

std::string escape_text(std::string_view text);
std::string escape_attr(std::string_view value);

// Appending forms of the above.
void escape_text_to(std::string& out, std::string_view text);
void escape_attr_to(std::string& out, std::string_view value);

}  // namespace herald::xml
