#include "server/modules/mam/mam_protocol.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>


namespace herald::modules::mam {

using storage::ArchivePrefs;
using xmpp::StanzaError;
namespace chrono = std::chrono;

// --- XEP-0082 ---------------------------------------------------------------------------------

namespace {

// Exactly `n` ASCII digits at `pos`.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<chrono::system_clock::time_point> parse_datetime(std::string_view s) {
  // CCYY-MM-DDThh:mm:ss is 19 characters; the zone needs at least one more.
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  const auto year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
  const auto hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  const chrono::year_month_day date{chrono::year{*year}, chrono::month{static_cast<unsigned>(*month)},
                                    chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 59) return std::nullopt;

  std::size_t pos = 19;
  chrono::microseconds fraction{0};
  if (s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    std::int64_t micros = 0;
    while (pos < s.size() && is_digit(s[pos])) {
      if (pos - start < 6) micros = micros * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (std::size_t n = pos - start; n < 6; ++n) micros *= 10;
    fraction = chrono::microseconds(micros);
  }
  if (pos >= s.size()) return std::nullopt;  // the zone is required

  chrono::minutes offset{0};
  if (s[pos] == 'Z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    const auto oh = digits(s, pos + 1, 2), om = digits(s, pos + 4, 2);
    if (!oh || !om || s.size() < pos + 6 || s[pos + 3] != ':' || *oh > 14 || *om > 59) return std::nullopt;
    offset = chrono::minutes(*oh * 60 + *om);
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;

  const auto utc = chrono::sys_days{date} + chrono::hours(*hour) + chrono::minutes(*minute) + chrono::seconds(*second) +
                   fraction - offset;
  // The clock's nanoseconds end in 1677 and 2262: a bound beyond them is clamped, which
  // selects the same messages ("after 2999" is nothing, "before 2999" everything).
  using Clock = chrono::system_clock;
  const auto lowest = chrono::ceil<chrono::microseconds>(Clock::time_point::min());
  const auto highest = chrono::floor<chrono::microseconds>(Clock::time_point::max());
  if (utc <= lowest) return Clock::time_point::min();
  if (utc >= highest) return Clock::time_point::max();
  return chrono::time_point_cast<Clock::duration>(utc);
}

std::string format_datetime(chrono::system_clock::time_point t) {
  const auto micros = chrono::floor<chrono::microseconds>(t);
  const auto day = chrono::floor<chrono::days>(micros);
  const chrono::year_month_day date{day};
  const chrono::hh_mm_ss time{micros - day};
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(date.year()),
                        static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                        static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                        static_cast<int>(time.seconds().count()));
  std::string out(buf, static_cast<std::size_t>(n));
  if (const auto sub = time.subseconds().count(); sub != 0) {
    n = std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(sub));
    out.append(buf, static_cast<std::size_t>(n));
  }
  out += 'Z';
  return out;
}

// --- queries ------------------------------------------------------------------------------------

namespace {

Refusal refuse(StanzaError error, std::string text) { return Refusal{error, std::move(text)}; }

// The <value/> texts of a form field.
std::vector<std::string> values(const xml::Element& field) {
  std::vector<std::string> out;
  for (const auto* v : field.elements())
    if (v->name() == "value" && v->ns() == kDataFormsNs) out.push_back(v->text());
  return out;
}

// Applies the data form to `q`; an error if it cannot.
std::optional<Refusal> apply_form(const xml::Element& form, storage::ArchiveQuery& q) {
  const auto type = form.attr_or("type", "submit");
  if (type != "submit") return refuse(StanzaError::bad_request, "the query form must be of type 'submit'");
  std::vector<std::string> seen;
  for (const auto* field : form.elements()) {
    if (field->name() != "field" || field->ns() != kDataFormsNs) continue;
    const std::string var(field->attr_or("var"));
    if (std::find(seen.begin(), seen.end(), var) != seen.end())
      return refuse(StanzaError::bad_request, "field '" + var + "' appears twice");
    seen.push_back(var);
    auto vals = values(*field);
    std::erase_if(vals, [](const std::string& v) { return v.empty(); });
    if (var == "ids") {
      // Empty values are ignored; duplicates name one message.
      for (auto& v : vals)
        if (std::find(q.ids.begin(), q.ids.end(), v) == q.ids.end()) q.ids.push_back(std::move(v));
      continue;
    }
    if (vals.size() > 1) return refuse(StanzaError::bad_request, "field '" + var + "' takes one value");
    const std::string* value = vals.empty() ? nullptr : &vals.front();
    if (var == "FORM_TYPE") {
      if (value && *value != kMamNs) return refuse(StanzaError::bad_request, "FORM_TYPE must be urn:xmpp:mam:2");
    } else if (var == "with") {
      if (!value) continue;
      auto jid = xmpp::Jid::parse(*value);
      if (!jid) return refuse(StanzaError::bad_request, "'with' is not a JID: " + *value);
      q.with = jid->bare_str();
    } else if (var == "start" || var == "end") {
      if (!value) continue;
      auto t = parse_datetime(*value);
      if (!t) return refuse(StanzaError::bad_request, "'" + var + "' is not a XEP-0082 date-time: " + *value);
      (var == "start" ? q.start : q.end) = *t;
    } else if (var == "after-id") {
      if (value) q.after_id = *value;
    } else if (var == "before-id") {
      if (value) q.before_id = *value;
    } else {
      // XEP-0313 §4.1.5: a field the server does not recognise is an error.
      return refuse(StanzaError::feature_not_implemented, "unsupported query field '" + var + "'");
    }
  }
  return std::nullopt;
}

// Applies the XEP-0059 request to `q` and the page size.
std::optional<Refusal> apply_rsm(const xml::Element& set, storage::ArchiveQuery& q, const PageLimits& limits) {
  for (const auto* el : set.elements()) {
    if (el->ns() != kRsmNs) continue;
    const auto& name = el->name();
    const auto text = el->text();
    if (name == "max") {
      std::size_t max = 0;
      const auto* begin = text.data();
      const auto* end = begin + text.size();
      auto [ptr, ec] = std::from_chars(begin, end, max);
      if (text.empty() || ptr != end) return refuse(StanzaError::bad_request, "<max/> must be a non-negative integer");
      // Too large to represent is simply more than the server sends.
      if (ec == std::errc::result_out_of_range) max = std::numeric_limits<std::size_t>::max();
      else if (ec != std::errc()) return refuse(StanzaError::bad_request, "<max/> must be a non-negative integer");
      q.max = std::min(max, limits.max_page);
    } else if (name == "after") {
      if (!text.empty()) q.after_id = text;
    } else if (name == "before") {
      // Empty: the last page (XEP-0059 §2.5); an id: the page before it.
      q.from_end = true;
      if (!text.empty()) q.before_id = text;
    } else if (name == "index") {
      return refuse(StanzaError::feature_not_implemented,
                    "RSM <index/> is not supported; page with <after/> or <before/>");
    }
  }
  return std::nullopt;
}

}  // namespace

QueryRequest parse_query(const xml::Element& query, const PageLimits& limits) {
  QueryRequest r;
  r.queryid = std::string(query.attr_or("queryid"));
  r.query.max = std::min(limits.default_page, limits.max_page);
  if (query.attr("node")) {
    r.error = refuse(StanzaError::item_not_found, "a user archive has no nodes");
    return r;
  }
  const xml::Element* form = query.child("x", kDataFormsNs);
  const xml::Element* set = query.child("set", kRsmNs);
  if (form) {
    if (auto e = apply_form(*form, r.query)) {
      r.error = std::move(e);
      return r;
    }
  }
  if (set) {
    if (auto e = apply_rsm(*set, r.query, limits)) {
      r.error = std::move(e);
      return r;
    }
  }
  r.flip_page = query.child("flip-page", kMamNs) != nullptr;
  return r;
}

xml::Element query_form() {
  xml::Element query("query", std::string(kMamNs));
  auto& x = query.add("x", std::string(kDataFormsNs));
  x.set_attr("type", "form");
  auto& form_type = x.add("field");
  form_type.set_attr("type", "hidden").set_attr("var", "FORM_TYPE");
  form_type.add("value").add_text(std::string(kMamNs));
  x.add("field").set_attr("type", "jid-single").set_attr("var", "with");
  x.add("field").set_attr("type", "text-single").set_attr("var", "start");
  x.add("field").set_attr("type", "text-single").set_attr("var", "end");
  x.add("field").set_attr("type", "text-single").set_attr("var", "before-id");
  x.add("field").set_attr("type", "text-single").set_attr("var", "after-id");
  auto& ids = x.add("field");
  ids.set_attr("type", "list-multi").set_attr("var", "ids");
  // XEP-0313 §4.1.5: the list is open (XEP-0122), never enumerated.
  auto& validate = ids.add("validate", "http://jabber.org/protocol/xdata-validate");
  validate.set_attr("datatype", "xs:string");
  validate.add("open");
  return query;
}

xml::Element result_message(std::string_view to, std::string_view from, std::string_view queryid,
                            const storage::ArchivedMessage& archived, xml::Element original) {
  xml::Element message("message", "jabber:client");
  message.set_attr("to", std::string(to));
  message.set_attr("from", std::string(from));
  auto& result = message.add("result", std::string(kMamNs));
  if (!queryid.empty()) result.set_attr("queryid", std::string(queryid));
  result.set_attr("id", archived.id);
  auto& forwarded = result.add("forwarded", std::string(kForwardNs));
  forwarded.add("delay", std::string(kDelayNs)).set_attr("stamp", format_datetime(archived.stamp));
  forwarded.append(std::move(original));
  return message;
}

std::pair<std::size_t, std::size_t> page_window(const std::vector<storage::ArchivedMessage>& messages, bool from_end,
                                                std::size_t budget, std::size_t overhead) {
  const std::size_t n = messages.size();
  std::size_t bytes = 0;
  auto fits = [&](std::size_t i, bool first) {
    const std::size_t cost = messages[i].stanza.size() + overhead;
    if (!first && bytes + cost > budget) return false;
    bytes += cost;
    return true;
  };
  if (from_end) {
    std::size_t begin = n;
    while (begin > 0 && fits(begin - 1, begin == n)) --begin;
    return {begin, n};
  }
  std::size_t end = 0;
  while (end < n && fits(end, end == 0)) ++end;
  return {0, end};
}

xml::Element fin(const PageSummary& page) {
  xml::Element fin("fin", std::string(kMamNs));
  if (page.complete) fin.set_attr("complete", "true");
  auto& set = fin.add("set", std::string(kRsmNs));
  if (page.first) {
    auto& first = set.add("first");
    if (page.first_index) first.set_attr("index", std::to_string(*page.first_index));
    first.add_text(*page.first);
  }
  if (page.last) set.add("last").add_text(*page.last);
  set.add("count").add_text(std::to_string(page.count));
  return fin;
}

// --- preferences --------------------------------------------------------------------------------

std::string_view default_name(ArchivePrefs::Default d) {
  switch (d) {
    case ArchivePrefs::Default::always: return "always";
    case ArchivePrefs::Default::never: return "never";
    case ArchivePrefs::Default::roster: return "roster";
  }
  return "always";
}

std::optional<ArchivePrefs::Default> default_from_name(std::string_view name) {
  if (name == "always") return ArchivePrefs::Default::always;
  if (name == "never") return ArchivePrefs::Default::never;
  if (name == "roster") return ArchivePrefs::Default::roster;
  return std::nullopt;
}

namespace {

std::optional<Refusal> read_jids(const xml::Element* list, std::vector<std::string>& out) {
  if (!list) return std::nullopt;
  for (const auto* el : list->elements()) {
    if (el->name() != "jid" || el->ns() != kMamNs) continue;
    const auto text = el->text();
    auto jid = xmpp::Jid::parse(text);
    if (!jid) return refuse(StanzaError::bad_request, "not a JID: " + text);
    out.push_back(jid->bare_str());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return std::nullopt;
}

}  // namespace

PrefsRequest parse_prefs(const xml::Element& prefs) {
  PrefsRequest r;
  const auto* d = prefs.attr("default");
  if (!d) {
    r.error = refuse(StanzaError::bad_request, "<prefs/> needs a 'default' of always, never or roster");
    return r;
  }
  auto mode = default_from_name(*d);
  if (!mode) {
    r.error = refuse(StanzaError::bad_request, "'default' must be always, never or roster, not '" + *d + "'");
    return r;
  }
  r.prefs.default_mode = *mode;
  if (auto e = read_jids(prefs.child("always", kMamNs), r.prefs.always)) {
    r.error = std::move(e);
    return r;
  }
  if (auto e = read_jids(prefs.child("never", kMamNs), r.prefs.never)) r.error = std::move(e);
  return r;
}

xml::Element prefs_element(const ArchivePrefs& prefs) {
  xml::Element el("prefs", std::string(kMamNs));
  el.set_attr("default", std::string(default_name(prefs.default_mode)));
  auto& always = el.add("always");
  for (const auto& j : prefs.always) always.add("jid").add_text(j);
  auto& never = el.add("never");
  for (const auto& j : prefs.never) never.add("jid").add_text(j);
  return el;
}

xml::Element metadata_element(const ArchiveBounds& bounds) {
  xml::Element el("metadata", std::string(kMamNs));
  if (bounds) {
    el.add("start").set_attr("id", bounds->first.id).set_attr("timestamp", format_datetime(bounds->first.stamp));
    el.add("end").set_attr("id", bounds->second.id).set_attr("timestamp", format_datetime(bounds->second.stamp));
  }
  return el;
}

// --- what is archived ---------------------------------------------------------------------------

bool archivable(const xml::Element& message) {
  if (xmpp::kind_of(message) != xmpp::Kind::message) return false;
  const auto type = message.attr_or("type", "normal");
  if (type != "chat" && type != "normal") return false;
  bool content = false;
  bool store_hint = false;
  for (const auto* el : message.elements()) {
    const auto& ns = el->ns();
    const auto& name = el->name();
    if (ns == kHintsNs) {
      if (name == "no-store" || name == "no-permanent-store") return false;
      if (name == "store") store_hint = true;
    } else if (name == "body" && ns == message.ns()) {
      content = true;
    } else if ((name == "encrypted" && (ns == "urn:xmpp:omemo:2" || ns == "eu.siacs.conversations.axolotl")) ||
               (name == "openpgp" && ns == "urn:xmpp:openpgp:0") || (name == "x" && ns == "jabber:x:encrypted")) {
      content = true;
    }
  }
  return content || store_hint;
}

namespace {

bool listed(const std::vector<std::string>& sorted, std::string_view jid) {
  return std::binary_search(sorted.begin(), sorted.end(), jid, std::less<>());
}

}  // namespace

bool should_archive(const ArchivePrefs& prefs, std::string_view with_bare, bool with_in_roster) {
  if (listed(prefs.never, with_bare)) return false;
  if (listed(prefs.always, with_bare)) return true;
  switch (prefs.default_mode) {
    case ArchivePrefs::Default::always: return true;
    case ArchivePrefs::Default::never: return false;
    case ArchivePrefs::Default::roster: return with_in_roster;
  }
  return false;
}

bool needs_roster(const ArchivePrefs& prefs, std::string_view with_bare) {
  return prefs.default_mode == ArchivePrefs::Default::roster && !listed(prefs.never, with_bare) &&
         !listed(prefs.always, with_bare);
}

std::size_t strip_stanza_ids(xml::Element& message, const xmpp::Jid& by) {
  const auto before = message.nodes().size();
  std::erase_if(message.nodes(), [&](const xml::Element& el) {
    if (el.is_text() || el.name() != "stanza-id" || el.ns() != kSidNs) return false;
    const auto* attr = el.attr("by");
    if (!attr) return false;
    auto claimed = xmpp::Jid::parse(*attr);
    return claimed && *claimed == by;
  });
  return before - message.nodes().size();
}

void add_stanza_id(xml::Element& message, std::string id, std::string by) {
  auto& sid = message.add("stanza-id", std::string(kSidNs));
  sid.set_attr("id", std::move(id));
  sid.set_attr("by", std::move(by));
}

}  // namespace herald::modules::mam
