// A worker: one thread, one io_context. A connection lives on one worker for its whole
// life, so its state needs no locks. Each worker has its own database pool and stores.
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <unordered_set>

#include "server/core/config/config.hpp"
#include "server/net/asio.hpp"

namespace herald::storage {
class AccountStore;
class RosterStore;
class PrivacyStore;
class OfflineStore;
class ArchiveStore;
namespace pg {
class Pool;
}
}  // namespace herald::storage

namespace herald::core {

class Worker {
 public:
  Worker(unsigned index, const config::Config& cfg);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  unsigned index() const { return index_; }
  asio::io_context& io() { return io_; }
  storage::AccountStore& accounts() { return *accounts_; }
  storage::RosterStore& roster() { return *roster_; }
  storage::PrivacyStore& privacy() { return *privacy_; }
  storage::OfflineStore& offline() { return *offline_; }
  storage::ArchiveStore& archive() { return *archive_; }
  storage::pg::Pool& pool() { return *pool_; }

  // The worker whose thread is running, or nullptr outside workers.
  static Worker* current();

  void start();
  void stop();  // lets run() return; joins
  bool on_this_thread() const { return current() == this; }

  // Live streams on this worker (touched only on its thread): closed at shutdown.
  using StreamCloser = std::function<void()>;
  std::size_t track(StreamCloser closer);
  void untrack(std::size_t id);
  void close_all();
  std::size_t live_streams() const { return live_.load(); }

 private:
  unsigned index_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<storage::pg::Pool> pool_;
  std::unique_ptr<storage::AccountStore> accounts_;
  std::unique_ptr<storage::RosterStore> roster_;
  std::unique_ptr<storage::PrivacyStore> privacy_;
  std::unique_ptr<storage::OfflineStore> offline_;
  std::unique_ptr<storage::ArchiveStore> archive_;
  std::thread thread_;
  std::unordered_map<std::size_t, StreamCloser> streams_;
  std::size_t next_stream_id_ = 1;
  std::atomic<std::size_t> live_{0};
};

}  // namespace herald::core
