#include "server/xml/serializer.hpp"

#include <array>
#include <cstddef>

namespace herald::xml {
namespace {

// Replacement for each byte that needs escaping, or nullptr. Built at compile time so the
// scan is one table load per byte; runs of plain bytes are appended in one go.
using EscapeTable = std::array<const char*, 256>;

constexpr EscapeTable make_table(bool attr) {
  EscapeTable t{};
  t['&'] = "&amp;";
  t['<'] = "&lt;";
  t['>'] = "&gt;";
  // A literal CR would be turned into LF by end-of-line handling on the receiving side.
  t['\r'] = "&#13;";
  if (attr) {
    t['\''] = "&apos;";
    t['"'] = "&quot;";
    // Attribute value normalization would turn literal TAB/LF into spaces.
    t['\t'] = "&#9;";
    t['\n'] = "&#10;";
  }
  return t;
}

constexpr EscapeTable kTextTable = make_table(false);
constexpr EscapeTable kAttrTable = make_table(true);

void escape_into(std::string& out, std::string_view in, const EscapeTable& table) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char* rep = table[static_cast<unsigned char>(in[i])];
    if (rep == nullptr) continue;
    out.append(in.data() + run, i - run);
    out.append(rep);
    run = i + 1;
  }
  out.append(in.data() + run, in.size() - run);
}

struct Clark {
  std::string_view uri;
  std::string_view local;
};

// Splits "{uri}local"; false for anything else.
bool split_clark(std::string_view name, Clark& out) {
  if (name.empty() || name.front() != '{') return false;
  std::size_t close = name.find('}');
  if (close == std::string_view::npos) return false;
  out.uri = name.substr(1, close - 1);
  out.local = name.substr(close + 1);
  return true;
}

bool has_attr(const Element& e, std::string_view name) { return e.attr(name) != nullptr; }

// A prefix that an explicit "xmlns:p" attribute of `e` binds to `uri`, or empty.
std::string_view declared_prefix(const Element& e, std::string_view uri) {
  constexpr std::string_view kDecl = "xmlns:";
  for (const auto& [name, value] : e.attrs()) {
    if (value == uri && name.size() > kDecl.size() && name.starts_with(kDecl)) {
      return std::string_view(name).substr(kDecl.size());
    }
  }
  return {};
}

// Writes the generated prefix for the attribute namespace first used by attribute
// `first_index` of `e`. Deterministic, so every attribute sharing that namespace gets the
// same prefix without a per-element map; lengthened until it cannot clash with a
// namespace declaration carried over from the wire.
void append_prefix(std::string& out, const Element& e, std::size_t first_index) {
  std::string candidate = "h" + std::to_string(first_index);
  while (has_attr(e, "xmlns:" + candidate)) candidate += 'x';
  out += candidate;
}

void write_attrs(std::string& out, const Element& e) {
  const auto& attrs = e.attrs();
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    const auto& [name, value] = attrs[i];
    Clark c;
    if (!split_clark(name, c)) {
      if (name == "xmlns") continue;                       // the default namespace comes from ns() only
      if (!name.empty() && name.front() == '{') continue;  // malformed Clark name: unwritable
      out += ' ';
      out += name;
    } else if (c.uri == kXmlNamespace) {
      out += " xml:";
      out += c.local;
    } else if (c.uri.empty()) {
      out += ' ';
      out += c.local;
    } else if (std::string_view declared = declared_prefix(e, c.uri); !declared.empty()) {
      // The element already declares a prefix for this namespace (set by hand).
      out += ' ';
      out += declared;
      out += ':';
      out += c.local;
    } else {
      // Namespaced attribute: rare (the parser produces it only for foreign-namespace
      // attributes), so this path may be slower.
      std::size_t first = i;
      for (std::size_t j = 0; j < i; ++j) {
        Clark other;
        if (split_clark(attrs[j].first, other) && other.uri == c.uri) {
          first = j;
          break;
        }
      }
      if (first == i) {
        out += " xmlns:";
        append_prefix(out, e, first);
        out += "='";
        escape_into(out, c.uri, kAttrTable);
        out += '\'';
      }
      out += ' ';
      append_prefix(out, e, first);
      out += ':';
      out += c.local;
    }
    out += "='";
    escape_into(out, value, kAttrTable);
    out += '\'';
  }
}

}  // namespace

void escape_text_to(std::string& out, std::string_view text) { escape_into(out, text, kTextTable); }

void escape_attr_to(std::string& out, std::string_view value) { escape_into(out, value, kAttrTable); }

std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  escape_text_to(out, text);
  return out;
}

std::string escape_attr(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  escape_attr_to(out, value);
  return out;
}

void serialize_to(std::string& out, const Element& e, std::string_view parent_ns) {
  if (e.is_text()) {
    escape_into(out, e.text_content(), kTextTable);
    return;
  }
  out += '<';
  out += e.name();
  if (e.ns() != parent_ns) {
    out += " xmlns='";
    escape_into(out, e.ns(), kAttrTable);
    out += '\'';
  }
  write_attrs(out, e);
  if (e.nodes().empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const Element& child : e.nodes()) serialize_to(out, child, e.ns());
  out += "</";
  out += e.name();
  out += '>';
}

std::string serialize(const Element& element, std::string_view parent_ns) {
  std::string out;
  serialize_to(out, element, parent_ns);
  return out;
}

}  // namespace herald::xml
