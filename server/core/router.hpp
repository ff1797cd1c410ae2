// The router: checks addressing, stamps `from`, fires the hook events named from the
// stanza's shape, and falls back to the RFC 6121 §8 delivery rules when no module handles
// a stanza. It never parses payloads beyond an IQ's first child's name and namespace.
//
// Events, fired on the host named:
//   pre-<kind>/<dest>            sender's host, for stanzas from local clients (outbound rules)
//   inbound/<bare|full>          destination host, every stanza to a local account, before
//                                the events below (inbound access rules)
//   iq-<get|set>/<dest>/<ns>:<name>, then iq/<dest>    destination host
//   message/<dest>, presence/<dest>                    destination host
//   message/offline              destination host: a message for an account with no available resource
//   presence/broadcast           sender's host: presence without 'to' from a client
//   route/remote                 sender's host: destination domain is not served here
// <dest> is host, bare or full, from the destination JID's shape.
#pragma once

#include <memory>
#include <string>

#include "server/core/events.hpp"
#include "server/net/asio.hpp"
#include "server/xmpp/stanza.hpp"

namespace herald::core {

class Server;
class Session;

class Router {
 public:
  explicit Router(Server& server) : server_(server) {}

  // A stanza from a bound local client (on the client's worker).
  awaitable<void> from_client(Session& origin, xml::Element stanza);
  // A stanza whose addresses are already trustworthy (server replies; later s2s).
  awaitable<void> route(xml::Element stanza);
  // Replies to `stanza` with an error, unless it is itself an error.
  awaitable<void> bounce(const xml::Element& stanza, xmpp::StanzaError error, std::string_view text = {});

  // Serializes once and queues on `session`.
  static void send_to(Session& session, const xml::Element& stanza);
  static void send_to(Session& session, std::shared_ptr<const std::string> xml);

  // Default delivery once hooks have passed. Modules may call these too.
  // `redelivery`: see redeliver().
  awaitable<void> deliver_message_to_bare(StanzaEvent& ev, bool redelivery = false);
  // A message that was on its way to a session that ended before the client acknowledged
  // it (XEP-0198): delivered as if sent to the user's bare JID now (another resource,
  // offline storage, or a bounce) without the inbound events, which it already passed.
  // Sessions that are ending (Session::ending) stay in the directory until their
  // re-routing is done, so what still arrives for them queues behind in order; they are
  // skipped here (no ping-pong between two), and delivery observers are not told again
  // (the carbons went out at the first delivery).
  awaitable<void> redeliver(xml::Element message);
  void update_availability(Session& session, const xml::Element& presence);

 private:
  awaitable<void> route_to(xml::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to, Session* origin);
  awaitable<void> default_local(StanzaEvent& ev, xmpp::Kind kind, std::string_view dest);
  awaitable<bool> account_exists(const xmpp::Jid& bare);

  Server& server_;
};

}  // namespace herald::core
