#include "federation/dns/answer.hpp"

#include <algorithm>
#include <optional>

namespace herald::federation::dns {

std::string_view to_string(Status status) {
  switch (status) {
    case Status::ok: return "ok";
    case Status::not_found: return "not found";
    case Status::error: return "error";
    case Status::timeout: return "timeout";
  }
  return "unknown";
}

namespace {

constexpr std::uint16_t type_cname = 5;
constexpr std::uint16_t type_srv = 33;
constexpr std::uint16_t class_in = 1;
constexpr std::size_t header_size = 12;
constexpr std::size_t max_name_octets = 255;  // RFC 1035 §3.1, wire form
constexpr int max_pointer_jumps = 64;

std::string_view rcode_name(unsigned rcode) {
  switch (rcode) {
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "";
  }
}

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> message) : message_(message) {}

  std::size_t pos() const { return pos_; }
  void seek(std::size_t pos) { pos_ = pos; }
  std::size_t size() const { return message_.size(); }

  bool u16(std::uint16_t& out) {
    if (message_.size() - pos_ < 2) return false;
    out = static_cast<std::uint16_t>(message_[pos_] << 8 | message_[pos_ + 1]);
    pos_ += 2;
    return true;
  }

  bool u32(std::uint32_t& out) {
    if (message_.size() - pos_ < 4) return false;
    out = static_cast<std::uint32_t>(message_[pos_]) << 24 |
          static_cast<std::uint32_t>(message_[pos_ + 1]) << 16 |
          static_cast<std::uint32_t>(message_[pos_ + 2]) << 8 | message_[pos_ + 3];
    pos_ += 4;
    return true;
  }

  // Reads a possibly compressed domain name at the current position and moves past its
  // in-place encoding. Pointers must point strictly backwards and the decoded name may not
  // exceed 255 octets, so every name terminates; the jump limit is a second guard.
  // `out` may be null to only skip the name.
  bool name(std::string* out) {
    std::size_t p = pos_;
    std::optional<std::size_t> after;  // end of the in-place encoding, once a pointer is taken
    std::size_t octets = 1;            // the root label
    int jumps = 0;
    std::string text;
    for (;;) {
      if (p >= message_.size()) return false;
      const std::uint8_t length = message_[p];
      if ((length & 0xC0) == 0xC0) {
        if (p + 1 >= message_.size()) return false;
        const std::size_t target = static_cast<std::size_t>(length & 0x3F) << 8 | message_[p + 1];
        if (target >= p || ++jumps > max_pointer_jumps) return false;
        if (!after) after = p + 2;
        p = target;
        continue;
      }
      if (length & 0xC0) return false;  // 0x40 / 0x80: extended or reserved label types
      if (length == 0) {
        if (!after) after = p + 1;
        break;
      }
      if (message_.size() - p - 1 < length) return false;
      octets += length + 1u;
      if (octets > max_name_octets) return false;
      if (out) {
        if (!text.empty()) text.push_back('.');
        for (std::size_t i = p + 1; i <= p + length; ++i) append_escaped(text, message_[i]);
      }
      p += 1u + length;
    }
    pos_ = *after;
    if (out) *out = text.empty() ? std::string(".") : std::move(text);
    return true;
  }

 private:
  static void append_escaped(std::string& text, std::uint8_t c) {
    if (c == '.' || c == '\\') {
      text.push_back('\\');
      text.push_back(static_cast<char>(c));
    } else if (c < 0x21 || c > 0x7E) {
      text.push_back('\\');
      text.push_back(static_cast<char>('0' + c / 100));
      text.push_back(static_cast<char>('0' + c / 10 % 10));
      text.push_back(static_cast<char>('0' + c % 10));
    } else {
      text.push_back(static_cast<char>(c));
    }
  }

  std::span<const std::uint8_t> message_;
  std::size_t pos_ = 0;
};

SrvResult failure(Status status, std::string error) {
  SrvResult result;
  result.status = status;
  result.error = std::move(error);
  return result;
}

}  // namespace

SrvResult parse_srv_answer(std::span<const std::uint8_t> message) {
  if (message.size() < header_size) return failure(Status::error, "DNS answer shorter than its header");
  Reader reader(message);
  std::uint16_t id = 0, flags = 0, qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  reader.u16(id);
  reader.u16(flags);
  reader.u16(qdcount);
  reader.u16(ancount);
  reader.u16(nscount);
  reader.u16(arcount);
  if (!(flags & 0x8000)) return failure(Status::error, "DNS message is not a response");
  if ((flags >> 11 & 0xF) != 0) return failure(Status::error, "DNS response has an unexpected opcode");
  if (flags & 0x0200) return failure(Status::error, "DNS answer was truncated");
  const unsigned rcode = flags & 0xF;
  if (rcode == 3) return failure(Status::not_found, "no such domain (NXDOMAIN)");
  if (rcode != 0) {
    std::string name(rcode_name(rcode));
    if (name.empty()) name = "rcode " + std::to_string(rcode);
    return failure(Status::error, "DNS server answered " + name);
  }

  for (std::uint16_t i = 0; i < qdcount; ++i) {
    std::uint16_t qtype = 0, qclass = 0;
    if (!reader.name(nullptr) || !reader.u16(qtype) || !reader.u16(qclass)) {
      return failure(Status::error, "malformed question section in DNS answer");
    }
  }

  SrvResult result;
  std::optional<std::uint32_t> min_ttl;
  for (std::uint16_t i = 0; i < ancount; ++i) {
    std::uint16_t type = 0, klass = 0, rdlength = 0;
    std::uint32_t ttl = 0;
    if (!reader.name(nullptr) || !reader.u16(type) || !reader.u16(klass) || !reader.u32(ttl) ||
        !reader.u16(rdlength)) {
      return failure(Status::error, "malformed record in DNS answer");
    }
    const std::size_t rdata = reader.pos();
    if (reader.size() - rdata < rdlength) return failure(Status::error, "DNS record data runs past the answer");
    const std::size_t rdata_end = rdata + rdlength;
    if (ttl > 0x7FFFFFFFu) ttl = 0;  // RFC 2181 §8

    if (klass == class_in && type == type_srv) {
      SrvRecord record;
      if (!reader.u16(record.priority) || !reader.u16(record.weight) || !reader.u16(record.port) ||
          reader.pos() > rdata_end || !reader.name(&record.target) || reader.pos() != rdata_end) {
        return failure(Status::error, "malformed SRV record in DNS answer");
      }
      result.records.push_back(std::move(record));
      min_ttl = std::min(min_ttl.value_or(ttl), ttl);
    } else if (klass == class_in && type == type_cname) {
      min_ttl = std::min(min_ttl.value_or(ttl), ttl);  // the SRV data is only as fresh as the alias
    }
    reader.seek(rdata_end);
  }
  // The authority and additional sections are not needed; they are not parsed.
  (void)id;
  (void)nscount;
  (void)arcount;

  if (result.records.empty()) return failure(Status::not_found, "no SRV records (NODATA)");
  result.status = Status::ok;
  result.ttl = std::chrono::seconds(min_ttl.value_or(0));
  return result;
}

}  // namespace herald::federation::dns
