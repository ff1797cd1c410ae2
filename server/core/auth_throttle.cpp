#include "server/core/auth_throttle.hpp"

namespace herald::core {

void AuthThrottle::expire(Clock::time_point now) {
  // Sweep at most once a window so the table cannot grow without bound under a scan.
  if (now - last_sweep_ < window_) return;
  last_sweep_ = now;
  std::erase_if(entries_, [&](const auto& kv) { return now - kv.second.window_start >= window_; });
}

bool AuthThrottle::blocked(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  expire(now);
  auto it = entries_.find(address);
  if (it == entries_.end()) return false;
  if (now - it->second.window_start >= window_) {
    entries_.erase(it);
    return false;
  }
  return it->second.failures >= limit_;
}

void AuthThrottle::record_failure(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto& e = entries_[address];
  if (e.failures == 0 || now - e.window_start >= window_) {
    e.failures = 0;
    e.window_start = now;
  }
  ++e.failures;
}

}  // namespace herald::core
