// Builds DNS response messages byte by byte for the DNS tests (no compression unless
// asked for, so a test can place pointers exactly where it wants them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::test {

class DnsMessage {
 public:
  static constexpr std::uint16_t response = 0x8180;  // QR, RD, RA, rcode 0

  explicit DnsMessage(std::uint16_t flags = response) {
    u16(0x1234);
    u16(flags);
    for (int i = 0; i < 4; ++i) u16(0);
  }

  std::size_t size() const { return bytes_.size(); }

  DnsMessage& u8(std::uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  DnsMessage& u16(std::uint16_t v) {
    bytes_.push_back(static_cast<std::uint8_t>(v >> 8));
    bytes_.push_back(static_cast<std::uint8_t>(v));
    return *this;
  }
  DnsMessage& u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    return u16(static_cast<std::uint16_t>(v));
  }
  // Uncompressed wire form; "." or "" is the root.
  DnsMessage& name(std::string_view text) {
    while (!text.empty() && text != ".") {
      auto dot = text.find('.');
      auto label = text.substr(0, dot);
      u8(static_cast<std::uint8_t>(label.size()));
      bytes_.insert(bytes_.end(), label.begin(), label.end());
      text = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    }
    return u8(0);
  }
  DnsMessage& pointer(std::uint16_t offset) { return u16(static_cast<std::uint16_t>(0xC000 | offset)); }

  DnsMessage& question(std::string_view owner, std::uint16_t type = 33) {
    name(owner).u16(type).u16(1);
    return count(4);
  }
  // An RR header; the caller appends exactly `rdlength` bytes of data.
  DnsMessage& rr(std::string_view owner, std::uint16_t type, std::uint32_t ttl, std::uint16_t rdlength,
                 std::uint16_t klass = 1) {
    name(owner).u16(type).u16(klass).u32(ttl).u16(rdlength);
    return count(6);
  }
  DnsMessage& srv(std::string_view owner, std::uint32_t ttl, std::uint16_t priority, std::uint16_t weight,
                  std::uint16_t port, std::string_view target) {
    rr(owner, 33, ttl, static_cast<std::uint16_t>(6 + wire_length(target)));
    return u16(priority).u16(weight).u16(port).name(target);
  }
  DnsMessage& cname(std::string_view owner, std::uint32_t ttl, std::string_view target) {
    rr(owner, 5, ttl, static_cast<std::uint16_t>(wire_length(target)));
    return name(target);
  }
  DnsMessage& a(std::string_view owner, std::uint32_t ttl, std::uint32_t address) {
    rr(owner, 1, ttl, 4);
    return u32(address);
  }
  // Moves the RRs added so far into the authority (ns) or additional (ar) count.
  DnsMessage& as_additional(std::uint16_t n = 1) {
    add(6, -n);
    add(10, n);
    return *this;
  }

  std::vector<std::uint8_t> bytes() const { return bytes_; }

  static std::size_t wire_length(std::string_view text) {
    if (text.empty() || text == ".") return 1;
    std::size_t length = 1;
    while (!text.empty()) {
      auto dot = text.find('.');
      length += 1 + text.substr(0, dot).size();
      text = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    }
    return length;
  }

 private:
  DnsMessage& count(std::size_t offset) {
    add(offset, 1);
    return *this;
  }
  void add(std::size_t offset, int n) {
    int v = (bytes_[offset] << 8 | bytes_[offset + 1]) + n;
    bytes_[offset] = static_cast<std::uint8_t>(v >> 8);
    bytes_[offset + 1] = static_cast<std::uint8_t>(v);
  }
  std::vector<std::uint8_t> bytes_;
};

inline std::vector<std::uint8_t> from_hex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

}  // namespace herald::test
