#pragma once

// Shared by the xml unit tests: a StreamHandler that records every event, and helpers to
// feed a stream whole, split at one offset, or byte by byte.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/xml/element.hpp"
#include "server/xml/stream_parser.hpp"

namespace herald::xml::test {

struct Event {
  enum class Kind { open, stanza, close } kind;
  Element element;  // header for open, stanza for stanza, empty for close
  friend bool operator==(const Event&, const Event&) = default;
};

class Recorder : public StreamHandler {
 public:
  std::vector<Event> events;
  // Called after each event is recorded; lets a test suspend or throw.
  std::function<void(StreamParser&, const Event&)> after_event;
  StreamParser* parser = nullptr;

  void on_stream_open(Element header) override { record({Event::Kind::open, std::move(header)}); }
  void on_stanza(Element stanza) override { record({Event::Kind::stanza, std::move(stanza)}); }
  void on_stream_close() override { record({Event::Kind::close, Element()}); }

  std::vector<Element> stanzas() const {
    std::vector<Element> out;
    for (const Event& e : events) {
      if (e.kind == Event::Kind::stanza) out.push_back(e.element);
    }
    return out;
  }

 private:
  void record(Event e) {
    events.push_back(std::move(e));
    if (after_event && parser != nullptr) after_event(*parser, events.back());
  }
};

struct Outcome {
  std::vector<Event> events;
  Status status = Status::ok;  // status of the last feed
  std::optional<Error> error;
  std::size_t failed_at = 0;  // bytes fed (including the failing chunk) when an error appeared
  friend bool operator==(const Outcome& a, const Outcome& b) {
    return a.events == b.events && a.status == b.status && a.error.has_value() == b.error.has_value() &&
           (!a.error || (a.error->kind == b.error->kind && a.error->detail == b.error->detail));
  }
};

// Feeds `input` in the given chunk sizes (the last chunk takes the rest).
inline Outcome feed_chunks(std::string_view input, const std::vector<std::size_t>& sizes,
                           Limits limits = {}) {
  Recorder rec;
  StreamParser parser(rec, limits);
  rec.parser = &parser;
  Outcome out;
  std::size_t pos = 0;
  auto feed_piece = [&](std::string_view piece) {
    out.status = parser.feed(piece);
    pos += piece.size();
    if (out.status == Status::error && out.failed_at == 0) out.failed_at = pos;
  };
  for (std::size_t s : sizes) {
    if (pos >= input.size() || out.status == Status::error) break;
    feed_piece(input.substr(pos, s));
  }
  if (pos < input.size() && out.status != Status::error) feed_piece(input.substr(pos));
  out.events = std::move(rec.events);
  out.error = parser.error();
  return out;
}

inline Outcome feed_whole(std::string_view input, Limits limits = {}) {
  return feed_chunks(input, {}, limits);
}

inline Outcome feed_split(std::string_view input, std::size_t at, Limits limits = {}) {
  return feed_chunks(input, {at}, limits);
}

inline Outcome feed_bytewise(std::string_view input, Limits limits = {}) {
  return feed_chunks(input, std::vector<std::size_t>(input.size(), 1), limits);
}

inline constexpr std::string_view kC2sHeader =
    "<?xml version='1.0'?>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='example.com' version='1.0'>";

inline constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";

}  // namespace herald::xml::test
