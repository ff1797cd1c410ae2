// Stanza and stream error vocabulary (RFC 6120 §4.9 and §8.3) and small stanza helpers.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "server/xml/element.hpp"

namespace herald::xmpp {

enum class StreamError {
  bad_format, bad_namespace_prefix, conflict, connection_timeout, host_gone, host_unknown,
  improper_addressing, internal_server_error, invalid_from, invalid_namespace, invalid_xml,
  not_authorized, not_well_formed, policy_violation, remote_connection_failed, reset,
  resource_constraint, restricted_xml, see_other_host, system_shutdown, undefined_condition,
  unsupported_encoding, unsupported_feature, unsupported_stanza_type, unsupported_version,
};
std::string_view name(StreamError);
// <stream:error><COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text>..</text></stream:error>
// `app_condition`: an application-specific condition element, serialized (RFC 6120 §4.9.4).
std::string stream_error_xml(StreamError, std::string_view text = {}, std::string_view app_condition = {});

enum class StanzaError {
  bad_request, conflict, feature_not_implemented, forbidden, gone, internal_server_error,
  item_not_found, jid_malformed, not_acceptable, not_allowed, not_authorized, policy_violation,
  recipient_unavailable, redirect, registration_required, remote_server_not_found,
  remote_server_timeout, resource_constraint, service_unavailable, subscription_required,
  undefined_condition, unexpected_request,
};
std::string_view name(StanzaError);
std::string_view error_type(StanzaError);  // cancel, modify, auth, wait (RFC 6120 §8.3.3)

enum class Kind { message, presence, iq, other };
Kind kind_of(const xml::Element& stanza);  // by name, in jabber:client or jabber:server
std::string_view kind_name(Kind);

// The error reply to `stanza` (to/from swapped, type='error', original payload kept), or
// nullopt when `stanza` is itself an error: errors are never answered with errors.
std::optional<xml::Element> error_reply(const xml::Element& stanza, StanzaError,
                                        std::string_view text = {});
// <iq type='result' id=...> with to/from swapped and no payload.
xml::Element iq_result(const xml::Element& iq);

// XEP-0082 date-time in UTC to the second ("2026-11-21T10:00:00Z"), for <delay/> stamps.
std::string utc_stamp(std::chrono::system_clock::time_point t);

}  // namespace herald::xmpp
