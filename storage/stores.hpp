// The storage seam: every feature reaches the database only through one of these
// interfaces, so modules never see SQL and a store can be swapped (PostgreSQL, in-memory
// for tests) without touching them. All calls are awaited on the caller's worker and
// never block it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "server/net/asio.hpp"
#include "server/sasl/credentials.hpp"

namespace herald::storage {

// The database is unavailable or a statement failed. Callers turn it into an error
// towards the client (e.g. internal-server-error / temporary-auth-failure), never a
// silent loss: a store never pretends a write happened when it did not.
struct Error : std::runtime_error {
  using runtime_error::runtime_error;
};

// Accounts and their SCRAM credentials. Domains and usernames are passed already
// prepared (the JID's domain and local part); the store compares them byte for byte.
// Only SCRAM keys are stored, never passwords.
class AccountStore {
 public:
  virtual ~AccountStore() = default;

  // The account's keys, nullopt if there is no such account.
  virtual awaitable<std::optional<sasl::Credentials>> credentials(std::string domain,
                                                                  std::string username) = 0;
  virtual awaitable<bool> exists(std::string domain, std::string username) = 0;
  // False if the account already exists. All hashes are written in one transaction.
  virtual awaitable<bool> create(std::string domain, std::string username,
                                 sasl::Credentials credentials) = 0;
  // Replaces every stored hash; false if there is no such account.
  virtual awaitable<bool> set_credentials(std::string domain, std::string username,
                                          sasl::Credentials credentials) = 0;
  // False if there was no such account. Removes everything the account owns.
  virtual awaitable<bool> remove(std::string domain, std::string username) = 0;
  // (domain, username) pairs sorted bytewise; all domains when domain is nullopt.
  virtual awaitable<std::vector<std::pair<std::string, std::string>>> list(
      std::optional<std::string> domain) = 0;
};

}  // namespace herald::storage
