// Message Archive Management (XEP-0313, urn:xmpp:mam:2) and unique stanza ids (XEP-0359)
// as pure functions: the query form and RSM page (XEP-0004, XEP-0059) to a
// storage::ArchiveQuery, the elements the server sends back (results, <fin/>, the form,
// preferences, metadata), XEP-0082 date-times, and what the archive keeps (XEP-0334
// hints, the user's preferences). No I/O; unit-tested in tests/unit/mam.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/xml/element.hpp"
#include "server/xmpp/jid.hpp"
#include "server/xmpp/stanza.hpp"
#include "storage/stores.hpp"

namespace herald::modules::mam {

inline constexpr std::string_view kMamNs = "urn:xmpp:mam:2";
inline constexpr std::string_view kMamExtendedFeature = "urn:xmpp:mam:2#extended";
inline constexpr std::string_view kSidNs = "urn:xmpp:sid:0";
inline constexpr std::string_view kRsmNs = "http://jabber.org/protocol/rsm";
inline constexpr std::string_view kDataFormsNs = "jabber:x:data";
inline constexpr std::string_view kForwardNs = "urn:xmpp:forward:0";
inline constexpr std::string_view kDelayNs = "urn:xmpp:delay";
inline constexpr std::string_view kHintsNs = "urn:xmpp:hints";

// --- XEP-0082 date-times ------------------------------------------------------------------

// CCYY-MM-DDThh:mm:ss[.s+](Z|+hh:mm|-hh:mm), to UTC. Fractions beyond microseconds are
// truncated; times the clock cannot hold are clamped to its min()/max(). nullopt for
// anything else (lowercase t/z, missing zone, impossible dates).
std::optional<std::chrono::system_clock::time_point> parse_datetime(std::string_view text);
// UTC with a 'Z'; microseconds only when the time has a sub-second part, so a stamp read
// back as a query bound selects exactly that message.
std::string format_datetime(std::chrono::system_clock::time_point t);

// --- queries -------------------------------------------------------------------------------

// An error to answer a request with.
struct Refusal {
  xmpp::StanzaError error;
  std::string text;
};

struct PageLimits {
  std::size_t default_page = 50;  // without RSM <max/>
  std::size_t max_page = 250;     // the largest page the server returns
};

struct QueryRequest {
  std::optional<Refusal> error;  // set: nothing else is meaningful
  std::string queryid;           // echoed in every <result/>
  storage::ArchiveQuery query;
  bool flip_page = false;        // send the page newest first (XEP-0313 §4.3.4)
};

// The <query xmlns='urn:xmpp:mam:2'/> of an IQ set. 'with' matches by bare JID (a full
// JID is reduced to its bare JID: the archive keeps the other party's bare JID, as
// Prosody does). RSM <after/>/<before>id</before> are page cursors and take precedence
// over the form's after-id/before-id bounds (a client paging through a range keeps both).
QueryRequest parse_query(const xml::Element& query, const PageLimits& limits);

// The answer to <iq type='get'><query xmlns='urn:xmpp:mam:2'/></iq>: every supported field.
xml::Element query_form();

// One archived message sent to the querying resource `to`, from the archive `from`.
xml::Element result_message(std::string_view to, std::string_view from, std::string_view queryid,
                            const storage::ArchivedMessage& archived, xml::Element original);

// The part [begin, end) of a page that fits `budget` bytes once sent (each result costs
// its stanza plus `overhead`), never less than one message: its start when paging
// forward, its end when paging backward (from_end), so that paging on from the <first/>
// or <last/> that is sent skips nothing.
std::pair<std::size_t, std::size_t> page_window(const std::vector<storage::ArchivedMessage>& messages, bool from_end,
                                                std::size_t budget, std::size_t overhead = 512);

// What the IQ result says about the page that was sent.
struct PageSummary {
  std::optional<std::string> first, last;  // ids of the first and last message sent
  std::optional<std::size_t> first_index;  // position of `first` among all matches
  std::size_t count = 0;                   // messages matching the query (all pages)
  bool complete = true;                    // nothing more in the paging direction
};
xml::Element fin(const PageSummary& page);

// --- preferences (XEP-0441, the former XEP-0313 §5) -----------------------------------------

std::string_view default_name(storage::ArchivePrefs::Default d);
std::optional<storage::ArchivePrefs::Default> default_from_name(std::string_view name);

struct PrefsRequest {
  std::optional<Refusal> error;
  storage::ArchivePrefs prefs;
};
// <prefs default='always|never|roster'><always><jid/>..</always><never>..</never></prefs>.
// 'default' is required; a missing <always/> or <never/> is an empty list. JIDs are
// stored bare, sorted and unique.
PrefsRequest parse_prefs(const xml::Element& prefs);
xml::Element prefs_element(const storage::ArchivePrefs& prefs);

// <metadata/> with <start/> and <end/> (id and timestamp), empty for an empty archive.
using ArchiveBounds = std::optional<std::pair<storage::ArchivedMessage, storage::ArchivedMessage>>;  // oldest, newest
xml::Element metadata_element(const ArchiveBounds& bounds);

// --- what is archived ----------------------------------------------------------------------

// XEP-0313 §7.1.1 and XEP-0334: chat or normal messages (no type is normal) with a <body/>,
// an end-to-end encrypted payload (OMEMO, OX, legacy OpenPGP) or a <store/> hint; never
// with <no-store/> or <no-permanent-store/>; never error, groupchat or headline.
bool archivable(const xml::Element& message);

// Whether the user's preferences keep a message exchanged with `with_bare`: an entry in
// 'never' wins over one in 'always'; otherwise the default (roster: only contacts in the
// user's roster).
bool should_archive(const storage::ArchivePrefs& prefs, std::string_view with_bare, bool with_in_roster);
// Whether should_archive() depends on roster membership for this JID (so the roster
// need not be read otherwise).
bool needs_roster(const storage::ArchivePrefs& prefs, std::string_view with_bare);

// XEP-0359 §5 rule 2: removes every <stanza-id xmlns='urn:xmpp:sid:0'/> whose 'by' is
// `by` (compared as JIDs, so a differently cased claim is caught too). Returns how many.
std::size_t strip_stanza_ids(xml::Element& message, const xmpp::Jid& by);
// Appends <stanza-id xmlns='urn:xmpp:sid:0' id=.. by=../>.
void add_stanza_id(xml::Element& message, std::string id, std::string by);

}  // namespace herald::modules::mam
