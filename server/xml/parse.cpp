#include "server/xml/parse.hpp"

#include <string>

#include "server/xml/serializer.hpp"
#include "server/xml/stream_parser.hpp"

namespace herald::xml {

namespace {

struct Collector final : StreamHandler {
  std::optional<Element> element;
  bool extra = false;
  void on_stream_open(Element) override {}
  void on_stanza(Element stanza) override {
    if (element) extra = true;
    else element = std::move(stanza);
  }
  void on_stream_close() override {}
};

}  // namespace

std::optional<Element> parse_element(std::string_view text, std::string_view content_ns) {
  Collector collector;
  Limits limits;
  limits.max_stanza_bytes = text.size() + 1024;
  limits.max_depth = 256;
  limits.max_attributes = 1024;
  StreamParser parser(collector, limits);
  std::string wrapped = "<w xmlns='";
  wrapped += escape_attr(content_ns);
  wrapped += "'>";
  wrapped += text;
  wrapped += "</w>";
  if (parser.feed(wrapped) != Status::ok || collector.extra) return std::nullopt;
  return std::move(collector.element);
}

}  // namespace herald::xml
