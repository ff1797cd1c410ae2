// Client State Indication (XEP-0352): while a client says it is inactive, stanzas that
// only update state it can catch up on later (presence, chat states) are held, and a
// newer one from the same sender replaces the older; anything else flushes them first.
// Pure: no I/O, unit-tested on its own.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "server/xml/element.hpp"

namespace herald::c2s {

// The key under which a stanza may be held (a newer stanza with the same key replaces
// it), or empty if it must go out now.
std::string csi_hold_key(const xml::Element& stanza);

class CsiBuffer {
 public:
  explicit CsiBuffer(std::size_t limit = 500) : limit_(limit) {}

  // Holds `xml` under `key` (replacing an older one with that key). Returns false when
  // the buffer is full: flush, then send.
  bool hold(const std::string& key, std::shared_ptr<const std::string> xml);
  // Everything held, oldest first, and empties the buffer.
  std::vector<std::shared_ptr<const std::string>> take();
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  struct Item {
    std::string key;
    std::shared_ptr<const std::string> xml;
  };
  std::vector<Item> items_;
  std::size_t limit_;
};

}  // namespace herald::c2s
