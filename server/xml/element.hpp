#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::xml {

inline constexpr std::string_view kXmlNamespace = "http://www.w3.org/XML/1998/namespace";

// A value-semantic XML node. One class serves for element nodes and text nodes so that
// children can live contiguously in a std::vector<Element> (cheap to copy, move and
// compare; no parent pointers to keep consistent).
//
// Attribute names are qualified strings:
//   "to"            an attribute in no namespace (the usual case),
//   "xml:lang"      an attribute in the XML namespace,
//   "xmlns:p"       a prefixed namespace declaration (the parser produces these, and
//                   "xmlns", only on the stream header; an element's own namespace is
//                   always ns()),
//   "{uri}local"    an attribute in any other namespace (Clark notation; '{' cannot
//                   start an XML name, so this cannot collide). The serializer gives it
//                   a generated prefix.
class Element {
 public:
  Element() = default;  // empty element, no name
  Element(std::string name, std::string ns);
  static Element text_node(std::string text);

  bool is_text() const { return is_text_; }
  const std::string& name() const { return name_; }
  const std::string& ns() const { return ns_; }
  const std::string& text_content() const { return text_; }  // for a text node

  const std::string* attr(std::string_view name) const;  // nullptr if absent
  std::string_view attr_or(std::string_view name, std::string_view fallback = {}) const;
  Element& set_attr(std::string_view name, std::string value);  // add or replace; returns *this
  void remove_attr(std::string_view name);
  const std::vector<std::pair<std::string, std::string>>& attrs() const { return attrs_; }

  // The returned reference is invalidated by the next change to this element's children.
  Element& append(Element child);                       // returns the inserted child
  Element& add(std::string name, std::string ns = {});  // new child; empty ns = parent's ns
  // Adjacent text is merged into one node, so a tree built here compares equal to the
  // same tree parsed back (the parser merges Expat's text fragments the same way).
  // Empty text adds nothing. Returns *this.
  Element& add_text(std::string text);

  const std::vector<Element>& nodes() const { return nodes_; }
  std::vector<Element>& nodes() { return nodes_; }

  const Element* child(std::string_view name, std::string_view ns) const;  // first element child
  Element* child(std::string_view name, std::string_view ns);
  const Element* first_element() const;          // first element (non-text) child
  std::vector<const Element*> elements() const;  // element children, in order
  std::string text() const;                      // concatenated direct text children
  // Text of the first matching child element; empty if there is none.
  std::string child_text(std::string_view name, std::string_view ns) const;
  void clear_children();
  // Moves this element and every descendant in namespace `from` to `to` (a stanza crossing
  // between jabber:client and jabber:server streams, RFC 6120 §4.8.3).
  void rename_namespace(std::string_view from, std::string_view to);

  // Structural equality: kind, name, namespace, attributes (in order), children.
  friend bool operator==(const Element&, const Element&) = default;

 private:
  std::string name_;
  std::string ns_;
  std::string text_;
  std::vector<std::pair<std::string, std::string>> attrs_;
  std::vector<Element> nodes_;
  bool is_text_ = false;
};

}  // namespace herald::xml
