// heraldctl: Herald's admin tool. Migrates the database schema, manages accounts and
// checks the federation set-up (DNS, certificates), using the server's own configuration
// file, storage and federation code, so what it writes and checks is exactly what the
// server reads and does.
#include <fmt/core.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "server/core/config/config.hpp"
#include "server/net/asio.hpp"
#include "server/sasl/credentials.hpp"
#include "server/xmpp/jid.hpp"
#include "storage/pg/account_store.hpp"
#include "storage/pg/pool.hpp"
#include "storage/pg/schema.hpp"
#include "storage/schema.hpp"
#include "storage/stores.hpp"
#include "tools/heraldctl/check.hpp"

namespace {

using namespace herald;
using namespace std::chrono_literals;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr int exit_config = 3;

constexpr std::string_view default_config = "/etc/herald/herald.toml";

constexpr std::string_view main_help = R"(Usage: heraldctl [--config FILE] COMMAND [ARGS...]

Administers a Herald XMPP server: schema migrations and accounts in its database, and
checks of its federation set-up (DNS and certificates).

Commands:
  migrate               apply the pending schema migrations
  migrate --status      show each migration: applied, pending or mismatched
  user add JID          create an account (asks for its password)
  user del JID          delete an account and everything stored for it
  user passwd JID       set an account's password
  user list [DOMAIN]    list accounts, of one domain or of all
  check dns DOMAIN      how other servers reach DOMAIN: SRV and A/AAAA records,
                        connection attempts, the certificate presented
  check certs           the certificate and key of every [[host]]: names, chain,
                        expiry, key match

Options:
  -c, --config FILE     the server's configuration file; default: $HERALD_CONFIG,
                        else /etc/herald/herald.toml
  -h, --help            show this help; `heraldctl COMMAND --help` explains a command

Passwords: on a terminal heraldctl asks twice, without echo. Otherwise it reads one
line from standard input (the line break is not part of the password), e.g.
  printf '%s\n' "$PASSWORD" | heraldctl user add alice@example.org
Only SCRAM keys (SHA-1, SHA-256, SHA-512) are stored, never the password.

Exit status:
  0  success
  1  failure: database unreachable, user exists or does not exist, password rejected,
     schema not current (migrate --status), a check found a problem, ...
  2  usage error: unknown command or option, missing or invalid argument
  3  configuration error: the file is missing, unreadable or invalid
)";

constexpr std::string_view migrate_help = R"(Usage: heraldctl [--config FILE] migrate [--status]

Brings the database schema up to what this Herald build needs: applies each pending
migration in order, each in its own transaction, and records it in herald_schema.
Safe to run again (nothing to do is not an error) and concurrently (migrators queue on
a lock). Run it after installing a new Herald, before starting the server.

It refuses to touch a database migrated by a different Herald build (a checksum
differs) or by a newer one (it has migrations this build does not know).

Options:
  --status    change nothing; list every migration as applied, pending, checksum
              mismatch or unknown to this build. Exit status 0 if the schema is
              exactly what this build needs, 1 otherwise.
  -h, --help  show this help
)";

constexpr std::string_view user_help = R"(Usage: heraldctl [--config FILE] user COMMAND ...

Commands:
  user add JID          create an account
  user del JID          delete an account and everything stored for it
  user passwd JID       set an account's password
  user list [DOMAIN]    list accounts (one bare JID per line)

JID is a bare account address, user@domain, whose domain is a [[host]] of the
configuration. `heraldctl user COMMAND --help` explains a command.
)";

constexpr std::string_view user_add_help = R"(Usage: heraldctl [--config FILE] user add JID

Creates the account JID (user@domain; the domain must be a [[host]] of the
configuration). The password is asked twice on a terminal, or read as one line from
standard input. Fails (exit status 1) if the account exists.
)";

constexpr std::string_view user_del_help = R"(Usage: heraldctl [--config FILE] user del JID

Deletes the account JID and everything stored for it. Sessions already connected stay
connected until they end. Fails (exit status 1) if there is no such account.
)";

constexpr std::string_view user_passwd_help = R"(Usage: heraldctl [--config FILE] user passwd JID

Sets a new password for the account JID, replacing its keys for every hash. The
password is asked twice on a terminal, or read as one line from standard input. Fails
(exit status 1) if there is no such account.
)";

constexpr std::string_view user_list_help = R"(Usage: heraldctl [--config FILE] user list [DOMAIN]

Lists accounts as bare JIDs, one per line, sorted; only those of DOMAIN if given.
)";

constexpr std::string_view check_help = R"(Usage: heraldctl [--config FILE] check COMMAND ...

Checks the federation (server-to-server) set-up, in words an operator can act on. Each
check prints what it found and ends with one line: OK, or FAILED and what to fix.

Commands:
  check dns DOMAIN      how other servers reach DOMAIN: SRV and A/AAAA records found,
                        a connection to each address, the certificate presented
  check certs           the certificate and key of every [[host]] of the configuration

Exit status: 0 all good, 1 a problem was found, 2 usage error, 3 configuration error.
`heraldctl check COMMAND --help` explains a command.
)";

constexpr std::string_view check_dns_help = R"(Usage: heraldctl [--config FILE] check dns DOMAIN

Shows how a server reaches DOMAIN for federation, and tries it, the way Herald does:

  1. the SRV records of _xmpps-server._tcp.DOMAIN (direct TLS, XEP-0368) and
     _xmpp-server._tcp.DOMAIN (STARTTLS), or why there are none (NXDOMAIN/no records,
     error, timeout), asked from [federation] dns_servers with dns_timeout_ms and
     dns_tries;
  2. the resulting connection plan, in order: host:port, direct TLS or STARTTLS. Without
     SRV records: DOMAIN's own A/AAAA records on port 5269. A target of "." means
     DOMAIN offers no service;
  3. the A/AAAA addresses of each target, and a connection to each address, bounded by
     [federation] connect_timeout: TCP, then for STARTTLS a stream header (from the first
     [[host]], to DOMAIN) and <starttls/>, then the TLS handshake with SNI = DOMAIN;
  4. the certificate presented: whether its chain is valid against [federation] ca_file
     (or OpenSSL's reason why not), the names it holds and whether one is DOMAIN, and
     when it expires.

Exit status 0 if at least one address connected and presented a valid certificate for
DOMAIN; 1 otherwise, with a last line saying what to fix (e.g. "no SRV records and no
A/AAAA record for DOMAIN: add _xmpp-server._tcp.DOMAIN SRV records"). The database is
not used.
)";

constexpr std::string_view check_certs_help = R"(Usage: heraldctl [--config FILE] check certs

Checks the certificate and key of every [[host]] of the configuration, as the server
will use them:
  - the key file holds the private key of the certificate;
  - the names in the certificate (DNS names, SRV names, XmppAddr, CN) and whether they
    cover the host's domain;
  - the chain (the host's certificate first in the file, then its intermediates) is valid
    against [federation] ca_file, the CAs peers are expected to trust;
  - the expiry date: a warning when fewer than 14 days are left, a problem once expired.

Every problem is printed with what to do. Exit status 0 if there is no problem (warnings
allowed), 1 otherwise. The database is not used.
)";

// Each error kind carries its exit status; main() prints what() and exits with it.
struct UsageError : std::runtime_error {
  explicit UsageError(const std::string& what, std::string help_command = "heraldctl --help")
      : runtime_error(what), help(std::move(help_command)) {}
  std::string help;  // where the right usage is explained
};
struct Failure : std::runtime_error {
  using runtime_error::runtime_error;
};

bool is_help(std::string_view arg) { return arg == "-h" || arg == "--help"; }

// ------------------------------------------------------------------ passwords

// The terminal's settings while echo is off, so a signal can put them back: a Ctrl-C at
// the prompt must not leave the operator's shell without echo.
struct termios saved_termios;
volatile sig_atomic_t echo_off = 0;

void restore_echo_and_reraise(int sig) {
  if (echo_off) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string prompt_without_echo(const char* prompt) {
  std::cerr << prompt << std::flush;
  if (tcgetattr(STDIN_FILENO, &saved_termios) != 0)
    throw Failure("cannot read the terminal's settings");
  struct termios quiet = saved_termios;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(sig, restore_echo_and_reraise);
  echo_off = 1;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
  echo_off = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(sig, SIG_DFL);
  if (!got) throw Failure("no password given; nothing changed");
  return line;
}

std::string read_password() {
  std::string password;
  if (isatty(STDIN_FILENO)) {
    password = prompt_without_echo("Password: ");
    if (prompt_without_echo("Repeat password: ") != password) {
      throw Failure("the passwords do not match; nothing changed");
    }
  } else {
    if (!std::getline(std::cin, password) && password.empty()) {
      throw Failure(
          "no password on standard input: give it as one line, e.g. "
          "printf '%s\\n' \"$PASSWORD\" | heraldctl ...; nothing changed");
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
  }
  if (!sasl::prepare_password(password)) {
    throw Failure(
        "password rejected: it must not be empty and may not contain control "
        "characters (RFC 8265 OpaqueString); nothing changed");
  }
  return password;
}

// ------------------------------------------------------------------ database

// The storage code is asynchronous; heraldctl simply drives it on an io_context of its
// own, one step at a time (blocking here is fine: nothing else runs in this process).
class Database {
 public:
  explicit Database(const config::Config& cfg)
      : cfg_(cfg), pool_(io_, {cfg.database.conninfo, 1, cfg.database.connect_timeout, 30s}) {}

  template <class T>
  T run(awaitable<T> task) {
    std::optional<T> result;
    std::exception_ptr failure;
    asio::co_spawn(io_, std::move(task), [&](std::exception_ptr e, T value) {
      failure = e;
      if (!e) result = std::move(value);
    });
    io_.restart();
    io_.run();
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
  }

  storage::pg::Pool& pool() { return pool_; }

  // User commands need the schema this build was made for; say how to get there instead
  // of failing on a missing table.
  void require_current_schema() {
    storage::SchemaCheck check = run(storage::check_schema(pool_, cfg_.path.string()));
    if (!check) throw Failure(check.message);
  }

 private:
  const config::Config& cfg_;
  asio::io_context io_;  // declared before pool_: the pool's sockets die first
  storage::pg::Pool pool_;
};

// ------------------------------------------------------------------ commands

struct Account {
  std::string username, domain;
  std::string jid() const { return username + "@" + domain; }
};

// Syntax first (no configuration needed), so a typo is a usage error either way.
xmpp::Jid parse_account_jid(const std::string& text) {
  auto jid = xmpp::Jid::parse(text);
  if (!jid) throw UsageError(fmt::format("'{}' is not a valid JID", text));
  if (jid->local().empty()) {
    throw UsageError(fmt::format("'{}' has no user part: give an account JID such as user@{}", text,
                                 jid->domain()));
  }
  if (!jid->is_bare()) {
    throw UsageError(
        fmt::format("'{}' has a resource: give the bare JID {}", text, jid->bare_str()));
  }
  return *jid;
}

Account served_account(const xmpp::Jid& jid, const config::Config& cfg) {
  if (!cfg.find_host(jid.domain())) {
    std::string hosts;
    for (const auto& h : cfg.hosts) hosts += (hosts.empty() ? "" : ", ") + h.domain;
    throw UsageError(
        fmt::format("{} is not served by this server: no [[host]] with domain '{}' in "
                    "{} (hosts: {})",
                    jid.bare_str(), jid.domain(), cfg.path.string(), hosts));
  }
  return {jid.local(), jid.domain()};
}

int cmd_migrate(const config::Config& cfg, bool status_only) {
  Database db(cfg);
  if (status_only) {
    storage::SchemaStatus status = db.run(storage::schema_status(db.pool()));
    fmt::print("{:<8} {:<32} {:<22} {}\n", "version", "name", "state", "applied");
    for (const auto& m : status.migrations) {
      fmt::print("{:<8} {:<32} {:<22} {}\n", fmt::format("{:04d}", m.version), m.name,
                 storage::to_string(m.state), m.applied_at.empty() ? "-" : m.applied_at);
    }
    storage::SchemaCheck check = storage::evaluate(status, cfg.path.string());
    if (check) {
      fmt::print("schema is current (version {})\n", status.database_version);
      return exit_ok;
    }
    fmt::print("{}\n", check.message);
    return exit_failure;
  }
  std::vector<storage::Migration> applied = db.run(storage::migrate(db.pool()));
  for (const auto& m : applied) fmt::print("applied {}\n", storage::label(m));
  const auto known = storage::migrations();
  fmt::print("schema is current (version {})\n", known.empty() ? 0 : known.back().version);
  return exit_ok;
}

int cmd_user_add(const config::Config& cfg, const xmpp::Jid& jid) {
  Account account = served_account(jid, cfg);
  Database db(cfg);
  db.require_current_schema();
  auto store = storage::pg::make_account_store(db.pool());
  // Before asking for a password: no point typing one for an account that exists.
  if (db.run(store->exists(account.domain, account.username))) {
    throw Failure(
        fmt::format("user exists: {}; use `heraldctl user passwd {}` to change its password",
                    account.jid(), account.jid()));
  }
  std::string password = read_password();
  auto credentials = sasl::make_credentials(password, cfg.auth.scram_iterations);
  if (!db.run(store->create(account.domain, account.username, std::move(credentials)))) {
    throw Failure(fmt::format("user exists: {}", account.jid()));
  }
  fmt::print("created {}\n", account.jid());
  return exit_ok;
}

int cmd_user_passwd(const config::Config& cfg, const xmpp::Jid& jid) {
  Account account = served_account(jid, cfg);
  Database db(cfg);
  db.require_current_schema();
  auto store = storage::pg::make_account_store(db.pool());
  if (!db.run(store->exists(account.domain, account.username))) {
    throw Failure(fmt::format("no such user: {}", account.jid()));
  }
  std::string password = read_password();
  auto credentials = sasl::make_credentials(password, cfg.auth.scram_iterations);
  if (!db.run(store->set_credentials(account.domain, account.username, std::move(credentials)))) {
    throw Failure(fmt::format("no such user: {}", account.jid()));
  }
  fmt::print("password changed for {}\n", account.jid());
  return exit_ok;
}

int cmd_user_del(const config::Config& cfg, const xmpp::Jid& jid) {
  Account account = served_account(jid, cfg);
  Database db(cfg);
  db.require_current_schema();
  auto store = storage::pg::make_account_store(db.pool());
  if (!db.run(store->remove(account.domain, account.username))) {
    throw Failure(fmt::format("no such user: {}", account.jid()));
  }
  fmt::print("deleted {}\n", account.jid());
  return exit_ok;
}

int cmd_user_list(const config::Config& cfg, const std::optional<std::string>& domain) {
  Database db(cfg);
  db.require_current_schema();
  auto store = storage::pg::make_account_store(db.pool());
  for (const auto& [d, user] : db.run(store->list(domain))) fmt::print("{}@{}\n", user, d);
  return exit_ok;
}

// ------------------------------------------------------------------ command line

struct Command {
  std::vector<std::string> words;  // "migrate" / "user", "add"
  std::vector<std::string> args;   // positional arguments
  bool status = false;             // migrate --status
  std::string_view help;           // non-empty: print it and exit 0
};

Command parse_command(const std::vector<std::string>& rest) {
  if (rest.empty()) throw UsageError("no command given");
  Command c;
  const std::string& verb = rest[0];
  std::vector<std::string> tail(rest.begin() + 1, rest.end());
  auto want_help = [&](std::size_t from) {
    for (std::size_t i = from; i < tail.size(); ++i) {
      if (is_help(tail[i])) return true;
    }
    return false;
  };
  auto positional = [&](std::size_t from, std::size_t min, std::size_t max, std::string_view what) {
    std::vector<std::string> out;
    for (std::size_t i = from; i < tail.size(); ++i) {
      if (tail[i].size() > 1 && tail[i][0] == '-') {
        throw UsageError(fmt::format("{}: unknown option '{}'", what, tail[i]),
                         fmt::format("heraldctl {} --help", what));
      }
      out.push_back(tail[i]);
    }
    if (out.size() < min) {
      throw UsageError(fmt::format("{}: missing argument", what),
                       fmt::format("heraldctl {} --help", what));
    }
    if (out.size() > max) {
      throw UsageError(fmt::format("{}: unexpected argument '{}'", what, out[max]),
                       fmt::format("heraldctl {} --help", what));
    }
    return out;
  };

  if (verb == "migrate") {
    c.words = {"migrate"};
    if (want_help(0)) {
      c.help = migrate_help;
      return c;
    }
    for (const auto& arg : tail) {
      if (arg == "--status") {
        c.status = true;
      } else {
        throw UsageError(fmt::format("migrate: unexpected argument '{}'", arg),
                         "heraldctl migrate --help");
      }
    }
    return c;
  }
  if (verb == "user") {
    if (tail.empty()) {
      throw UsageError("user: missing command (add, del, passwd or list)", "heraldctl user --help");
    }
    if (is_help(tail[0])) {
      c.help = user_help;
      return c;
    }
    const std::string& sub = tail[0];
    c.words = {"user", sub};
    std::string what = "user " + sub;
    if (sub == "add" || sub == "del" || sub == "passwd") {
      if (want_help(1)) {
        c.help = sub == "add" ? user_add_help : sub == "del" ? user_del_help : user_passwd_help;
        return c;
      }
      c.args = positional(1, 1, 1, what);
      return c;
    }
    if (sub == "list") {
      if (want_help(1)) {
        c.help = user_list_help;
        return c;
      }
      c.args = positional(1, 0, 1, what);
      return c;
    }
    throw UsageError(fmt::format("user: unknown command '{}' (add, del, passwd or list)", sub),
                     "heraldctl user --help");
  }
  if (verb == "check") {
    if (tail.empty()) throw UsageError("check: missing command (dns or certs)", "heraldctl check --help");
    if (is_help(tail[0])) {
      c.help = check_help;
      return c;
    }
    const std::string& sub = tail[0];
    c.words = {"check", sub};
    std::string what = "check " + sub;
    if (sub == "dns" || sub == "certs") {
      if (want_help(1)) {
        c.help = sub == "dns" ? check_dns_help : check_certs_help;
        return c;
      }
      if (sub == "dns") {
        c.args = positional(1, 1, 1, what);
      } else {
        c.args = positional(1, 0, 0, what);
      }
      return c;
    }
    throw UsageError(fmt::format("check: unknown command '{}' (dns or certs)", sub), "heraldctl check --help");
  }
  if (is_help(verb)) {
    c.help = main_help;
    return c;
  }
  throw UsageError(fmt::format("unknown command '{}'", verb));
}

int run(int argc, char** argv) {
  std::optional<std::string> config_path;
  std::vector<std::string> rest;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (is_help(arg)) {
      fmt::print("{}", main_help);
      return exit_ok;
    }
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) throw UsageError(fmt::format("{} needs a file name", arg));
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = std::string(arg.substr(9));
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError(fmt::format("unknown option '{}'", arg));
    } else {
      break;
    }
  }
  for (; i < argc; ++i) rest.emplace_back(argv[i]);

  Command command = parse_command(rest);
  if (!command.help.empty()) {
    fmt::print("{}", command.help);
    return exit_ok;
  }
  // Arguments that need no configuration are checked before it is read.
  std::optional<xmpp::Jid> jid;
  std::optional<std::string> domain;
  if (command.words[0] == "check" && command.words[1] == "dns") {
    auto d = xmpp::Jid::parse(command.args[0]);
    if (!d || !d->is_domain()) {
      throw UsageError(fmt::format("check dns: '{}' is not a domain", command.args[0]),
                       "heraldctl check dns --help");
    }
    domain = d->domain();
  }
  if (command.words[0] == "user") {
    if (command.words[1] == "list") {
      if (!command.args.empty()) {
        auto d = xmpp::Jid::parse(command.args[0]);
        if (!d || !d->is_domain()) {
          throw UsageError(fmt::format("'{}' is not a domain", command.args[0]));
        }
        domain = d->domain();
      }
    } else {
      jid = parse_account_jid(command.args[0]);
    }
  }

  if (!config_path) {
    const char* env = std::getenv("HERALD_CONFIG");
    config_path = env && *env ? std::string(env) : std::string(default_config);
  }
  config::Config cfg;
  std::error_code ec;
  if (!std::filesystem::exists(*config_path, ec)) {
    fmt::print(stderr,
               "heraldctl: configuration file {} does not exist: give the server's with "
               "--config FILE or HERALD_CONFIG\n",
               *config_path);
    return exit_config;
  }
  try {
    cfg = config::load(*config_path);
  } catch (const config::ConfigError& e) {
    fmt::print(stderr, "heraldctl: {}\n", e.what());
    return exit_config;
  }

  if (command.words[0] == "check") {
    if (command.words[1] == "dns") return heraldctl::check_dns(cfg, *domain);
    return heraldctl::check_certs(cfg);
  }
  try {
    if (command.words[0] == "migrate") return cmd_migrate(cfg, command.status);
    const std::string& sub = command.words[1];
    if (sub == "add") return cmd_user_add(cfg, *jid);
    if (sub == "del") return cmd_user_del(cfg, *jid);
    if (sub == "passwd") return cmd_user_passwd(cfg, *jid);
    return cmd_user_list(cfg, domain);
  } catch (const storage::SchemaRefused& e) {
    throw Failure(e.what());
  } catch (const storage::pg::QueryError& e) {
    throw Failure(fmt::format("the database refused a statement: {}", e.what()));
  } catch (const storage::Error& e) {
    throw Failure(
        fmt::format("{}\nCheck [database] conninfo in {} and that PostgreSQL is running "
                    "and reachable.",
                    e.what(), cfg.path.string()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    fmt::print(stderr, "heraldctl: {}\nTry '{}'.\n", e.what(), e.help);
    return exit_usage;
  } catch (const Failure& e) {
    fmt::print(stderr, "heraldctl: {}\n", e.what());
    return exit_failure;
  } catch (const std::exception& e) {
    fmt::print(stderr, "heraldctl: {}\n", e.what());
    return exit_failure;
  }
}
