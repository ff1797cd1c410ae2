// Failed-authentication throttle per IP address: after `limit` failures within `window`, an
// address gets temporary-auth-failure until the window has passed. Shared by all workers.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace herald::core {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  AuthThrottle(unsigned limit, std::chrono::seconds window) : limit_(limit), window_(window) {}

  bool blocked(const std::string& address, Clock::time_point now = Clock::now());
  void record_failure(const std::string& address, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    unsigned failures = 0;
    Clock::time_point window_start;
  };
  void expire(Clock::time_point now);

  unsigned limit_;
  std::chrono::seconds window_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  Clock::time_point last_sweep_{};
};

}  // namespace herald::core
