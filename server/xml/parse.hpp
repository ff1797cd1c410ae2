// One complete element from a string, for stanzas Herald serialized itself and stored or
// queued (offline storage, archives, stream-management queues).
#pragma once

#include <optional>
#include <string_view>

#include "server/xml/element.hpp"

namespace herald::xml {

// Parses `text` as one element whose default namespace is `content_ns` when it declares
// none (xml::serialize leaves jabber:client implicit). nullopt if it is not exactly one
// well-formed element within the default stream limits.
std::optional<Element> parse_element(std::string_view text, std::string_view content_ns = "jabber:client");

}  // namespace herald::xml
