// XEP-0198 bookkeeping for stanzas sent to a client: what was sent and not yet
// acknowledged, with 32-bit wrapping counters (§4: h is an unsignedInt that wraps to 0).
// Pure: no I/O, unit-tested on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace herald::c2s {

class SmQueue {
 public:
  struct Item {
    std::shared_ptr<const std::string> xml;
    std::chrono::system_clock::time_point queued;  // for the delay stamp if it is re-routed
  };

  void sent(std::shared_ptr<const std::string> xml,
            std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    items_.push_back({std::move(xml), now});
    ++sent_;
  }

  enum class Ack { ok, too_high };
  // The client has handled `h` stanzas in all (mod 2^32). Drops what it acknowledged;
  // an h below the last one (a stale or replayed count) acknowledges nothing new.
  Ack ack(std::uint32_t h) {
    const std::uint32_t newly = h - acked_;  // wraps like the protocol's counter
    if (newly > items_.size()) {
      // Either more than was sent (an error) or an old value (h behind acked_).
      const std::uint32_t behind = acked_ - h;
      if (behind <= acked_window_) return Ack::ok;
      return Ack::too_high;
    }
    for (std::uint32_t i = 0; i < newly; ++i) items_.pop_front();
    acked_ = h;
    return Ack::ok;
  }

  std::uint32_t sent_count() const { return sent_; }
  std::uint32_t acked() const { return acked_; }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::deque<Item>& items() const { return items_; }
  std::deque<Item> take() {
    std::deque<Item> out;
    out.swap(items_);
    acked_ = sent_;
    return out;
  }

 private:
  std::deque<Item> items_;
  std::uint32_t sent_ = 0;   // stanzas sent since enabling, mod 2^32
  std::uint32_t acked_ = 0;  // the highest h received
  // How far behind the last acknowledgement an h may be and still count as merely stale
  // (a late <a/> crossing a newer one) rather than an error.
  static constexpr std::uint32_t acked_window_ = 1u << 30;
};

}  // namespace herald::c2s
