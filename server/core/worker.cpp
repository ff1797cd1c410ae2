#include "server/core/worker.hpp"

#include <spdlog/spdlog.h>

#include "storage/pg/account_store.hpp"
#include "storage/pg/archive_store.hpp"
#include "storage/pg/offline_store.hpp"
#include "storage/pg/pool.hpp"
#include "storage/pg/privacy_store.hpp"
#include "storage/pg/roster_store.hpp"
#include "storage/stores.hpp"

namespace herald::core {
namespace {
thread_local Worker* t_current = nullptr;
}

Worker::Worker(unsigned index, const config::Config& cfg)
    : index_(index),
      io_(1),
      guard_(asio::make_work_guard(io_)),
      pool_(std::make_unique<storage::pg::Pool>(
          io_, storage::pg::Pool::Options{cfg.database.conninfo, cfg.database.pool_size,
                                          cfg.database.connect_timeout, std::chrono::seconds(30)})),
      accounts_(storage::pg::make_account_store(*pool_)),
      roster_(storage::pg::make_roster_store(*pool_)),
      privacy_(storage::pg::make_privacy_store(*pool_)),
      offline_(storage::pg::make_offline_store(*pool_)),
      archive_(storage::pg::make_archive_store(*pool_)) {}

Worker::~Worker() { stop(); }

Worker* Worker::current() { return t_current; }

void Worker::start() {
  thread_ = std::thread([this] {
    t_current = this;
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        // A handler that throws must not take the whole worker down with it.
        spdlog::error("worker {}: unhandled exception: {}", index_, e.what());
      }
    }
    t_current = nullptr;
  });
}

void Worker::stop() {
  guard_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

std::size_t Worker::track(StreamCloser closer) {
  auto id = next_stream_id_++;
  streams_.emplace(id, std::move(closer));
  ++live_;
  return id;
}

void Worker::untrack(std::size_t id) {
  if (streams_.erase(id)) --live_;
}

void Worker::close_all() {
  // Closers may untrack themselves: iterate over a copy.
  std::vector<StreamCloser> closers;
  for (auto& [id, c] : streams_) closers.push_back(c);
  for (auto& c : closers) c();
}

}  // namespace herald::core
