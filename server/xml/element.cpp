#include "server/xml/element.hpp"

namespace herald::xml {

Element::Element(std::string name, std::string ns) : name_(std::move(name)), ns_(std::move(ns)) {}

Element Element::text_node(std::string text) {
  Element e;
  e.text_ = std::move(text);
  e.is_text_ = true;
  return e;
}

const std::string* Element::attr(std::string_view name) const {
  for (const auto& [key, value] : attrs_) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::string_view Element::attr_or(std::string_view name, std::string_view fallback) const {
  const std::string* v = attr(name);
  return v != nullptr ? std::string_view(*v) : fallback;
}

Element& Element::set_attr(std::string_view name, std::string value) {
  for (auto& [key, old] : attrs_) {
    if (key == name) {
      old = std::move(value);
      return *this;
    }
  }
  attrs_.emplace_back(std::string(name), std::move(value));
  return *this;
}

void Element::remove_attr(std::string_view name) {
  for (auto it = attrs_.begin(); it != attrs_.end(); ++it) {
    if (it->first == name) {
      attrs_.erase(it);
      return;
    }
  }
}

Element& Element::append(Element child) {
  nodes_.push_back(std::move(child));
  return nodes_.back();
}

Element& Element::add(std::string name, std::string ns) {
  if (ns.empty()) ns = ns_;
  nodes_.emplace_back(std::move(name), std::move(ns));
  return nodes_.back();
}

Element& Element::add_text(std::string text) {
  if (text.empty()) return *this;
  if (!nodes_.empty() && nodes_.back().is_text_) {
    nodes_.back().text_ += text;
  } else {
    nodes_.push_back(text_node(std::move(text)));
  }
  return *this;
}

const Element* Element::child(std::string_view name, std::string_view ns) const {
  for (const Element& n : nodes_) {
    if (!n.is_text_ && n.name_ == name && n.ns_ == ns) return &n;
  }
  return nullptr;
}

Element* Element::child(std::string_view name, std::string_view ns) {
  return const_cast<Element*>(std::as_const(*this).child(name, ns));
}

const Element* Element::first_element() const {
  for (const Element& n : nodes_) {
    if (!n.is_text_) return &n;
  }
  return nullptr;
}

std::vector<const Element*> Element::elements() const {
  std::vector<const Element*> out;
  for (const Element& n : nodes_) {
    if (!n.is_text_) out.push_back(&n);
  }
  return out;
}

std::string Element::text() const {
  std::string out;
  for (const Element& n : nodes_) {
    if (n.is_text_) out += n.text_;
  }
  return out;
}

std::string Element::child_text(std::string_view name, std::string_view ns) const {
  const Element* c = child(name, ns);
  return c != nullptr ? c->text() : std::string();
}

void Element::clear_children() { nodes_.clear(); }

}  // namespace herald::xml

namespace herald::xml {

void Element::rename_namespace(std::string_view from, std::string_view to) {
  if (is_text_) return;
  if (ns_ == from) ns_ = std::string(to);
  for (auto& child : nodes_) child.rename_namespace(from, to);
}

}  // namespace herald::xml
