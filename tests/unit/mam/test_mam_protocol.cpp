// Unit tests for the archive protocol (server/modules/mam/mam_protocol.hpp): XEP-0313
// queries with their XEP-0004 form and XEP-0059 page, the elements sent back, XEP-0082
// date-times, preferences, what is archived (XEP-0334 hints) and XEP-0359 stanza ids.
#include <doctest/doctest.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/modules/mam/mam_protocol.hpp"
#include "server/xml/parse.hpp"
#include "server/xml/serializer.hpp"

namespace mam = herald::modules::mam;
namespace st = herald::storage;
namespace chrono = std::chrono;

using herald::xml::Element;
using herald::xmpp::Jid;
using herald::xmpp::StanzaError;
using Default = st::ArchivePrefs::Default;

namespace {

Element xml(std::string_view text) {
  auto el = herald::xml::parse_element(text);
  REQUIRE_MESSAGE(el.has_value(), "test XML does not parse: ", std::string(text));
  return *el;
}

Jid jid(std::string_view s) {
  auto j = Jid::parse(s);
  REQUIRE(j.has_value());
  return *j;
}

chrono::system_clock::time_point utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0,
                                     long long micros = 0) {
  return chrono::sys_days{chrono::year{y} / chrono::month{mo} / chrono::day{d}} + chrono::hours(h) +
         chrono::minutes(mi) + chrono::seconds(s) + chrono::microseconds(micros);
}

// A query with a form holding `fields` (XML) and an optional RSM <set/>.
std::string query_xml(std::string_view fields, std::string_view rsm = {}, std::string_view extra = {}) {
  std::string s = "<query xmlns='urn:xmpp:mam:2' queryid='q1'>";
  if (!fields.empty()) {
    s += "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>";
    s += fields;
    s += "</x>";
  }
  if (!rsm.empty()) {
    s += "<set xmlns='http://jabber.org/protocol/rsm'>";
    s += rsm;
    s += "</set>";
  }
  s += extra;
  s += "</query>";
  return s;
}

std::string field(std::string_view var, std::string_view value) {
  return "<field var='" + std::string(var) + "'><value>" + std::string(value) + "</value></field>";
}

mam::QueryRequest parse(std::string_view text, mam::PageLimits limits = {}) { return mam::parse_query(xml(text), limits); }

void expect_error(const mam::QueryRequest& r, StanzaError error) {
  REQUIRE(r.error.has_value());
  CHECK(r.error->error == error);
  CHECK_FALSE(r.error->text.empty());
}

const Element* find(const Element& e, std::string_view name) {
  for (const auto* c : e.elements())
    if (c->name() == name) return c;
  return nullptr;
}

}  // namespace

// --- XEP-0082 --------------------------------------------------------------------------------

TEST_CASE("datetime: UTC with Z") {
  auto t = mam::parse_datetime("2010-07-10T23:08:25Z");
  REQUIRE(t);
  CHECK(*t == utc(2010, 7, 10, 23, 8, 25));
}

TEST_CASE("datetime: fractional seconds of any length, truncated to microseconds") {
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25.1Z") == utc(2010, 7, 10, 23, 8, 25, 100000));
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25.123Z") == utc(2010, 7, 10, 23, 8, 25, 123000));
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25.123456Z") == utc(2010, 7, 10, 23, 8, 25, 123456));
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25.123456789Z") == utc(2010, 7, 10, 23, 8, 25, 123456));
}

TEST_CASE("datetime: offsets are converted to UTC") {
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25+02:00") == utc(2010, 7, 10, 21, 8, 25));
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25-05:30") == utc(2010, 7, 11, 4, 38, 25));
  CHECK(*mam::parse_datetime("2010-07-10T23:08:25.5+00:00") == utc(2010, 7, 10, 23, 8, 25, 500000));
  CHECK(*mam::parse_datetime("2000-01-01T00:30:00+01:00") == utc(1999, 12, 31, 23, 30, 0));
}

TEST_CASE("datetime: beyond the clock's range is clamped") {
  CHECK(*mam::parse_datetime("2999-01-01T00:00:00Z") == chrono::system_clock::time_point::max());
  CHECK(*mam::parse_datetime("9999-12-31T23:59:59.999999Z") == chrono::system_clock::time_point::max());
  CHECK(*mam::parse_datetime("1000-01-01T00:00:00Z") == chrono::system_clock::time_point::min());
  CHECK(*mam::parse_datetime("0000-01-01T00:00:00+14:00") == chrono::system_clock::time_point::min());
  CHECK(*mam::parse_datetime("2262-01-01T00:00:00Z") == utc(2262, 1, 1));
  CHECK(*mam::parse_datetime("1678-01-01T00:00:00Z") == utc(1678, 1, 1));
}

TEST_CASE("datetime: leap day only in leap years") {
  CHECK(mam::parse_datetime("2024-02-29T12:00:00Z"));
  CHECK(mam::parse_datetime("2000-02-29T12:00:00Z"));
  CHECK_FALSE(mam::parse_datetime("2023-02-29T12:00:00Z"));
  CHECK_FALSE(mam::parse_datetime("1900-02-29T12:00:00Z"));
}

TEST_CASE("datetime: malformed input is refused") {
  for (const char* bad : {"", "2010-07-10", "2010-07-10T23:08:25", "2010-07-10 23:08:25Z", "2010-07-10t23:08:25Z",
                          "2010-07-10T23:08:25z", "2010-7-10T23:08:25Z", "10-07-10T23:08:25Z", "2010-13-10T23:08:25Z",
                          "2010-00-10T23:08:25Z", "2010-07-32T23:08:25Z", "2010-07-00T23:08:25Z", "2010-07-10T24:00:00Z",
                          "2010-07-10T23:60:25Z", "2010-07-10T23:08:60Z", "2010-07-10T23:08:25.Z", "2010-07-10T23:08:25+0200",
                          "2010-07-10T23:08:25+02", "2010-07-10T23:08:25+15:00", "2010-07-10T23:08:25+02:60",
                          "2010-07-10T23:08:25Zjunk", "2010-07-10T23:08:25+02:00x", "2010-07-1aT23:08:25Z",
                          "+2010-07-10T23:08:25Z", " 2010-07-10T23:08:25Z", "2010-07-10T23:08:25.12a4Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(mam::parse_datetime(bad));
  }
}

TEST_CASE("datetime: formatting") {
  CHECK(mam::format_datetime(utc(2010, 7, 10, 23, 8, 25)) == "2010-07-10T23:08:25Z");
  CHECK(mam::format_datetime(utc(1999, 12, 31, 0, 0, 0)) == "1999-12-31T00:00:00Z");
  CHECK(mam::format_datetime(utc(2024, 2, 29, 1, 2, 3, 4)) == "2024-02-29T01:02:03.000004Z");
  CHECK(mam::format_datetime(utc(2024, 2, 29, 1, 2, 3, 123456)) == "2024-02-29T01:02:03.123456Z");
  CHECK(mam::format_datetime(utc(1969, 12, 31, 23, 59, 59, 500000)) == "1969-12-31T23:59:59.500000Z");
}

TEST_CASE("datetime: format and parse round-trip (microseconds)") {
  for (auto t : {utc(2010, 7, 10, 23, 8, 25), utc(2024, 2, 29, 1, 2, 3, 999999), utc(1970, 1, 1), utc(2038, 1, 19, 3, 14, 8, 1)}) {
    auto back = mam::parse_datetime(mam::format_datetime(t));
    REQUIRE(back);
    CHECK(*back == t);
  }
  // Sub-microsecond parts are dropped on the way out.
  const auto fine = utc(2020, 5, 5, 5, 5, 5, 5) + chrono::nanoseconds(700);
  CHECK(mam::format_datetime(fine) == "2020-05-05T05:05:05.000005Z");
}

// --- archived stanzas -------------------------------------------------------------------------

TEST_CASE("an archived stanza (serialized, with its stanza-id) parses back equal") {
  Element m("message", "jabber:client");
  m.set_attr("to", "juliet@capulet.lit").set_attr("from", "romeo@montague.lit/orchard").set_attr("type", "chat");
  m.add("body").add_text("Call me but love & <I'll> be new baptized");
  m.add("x", "jabber:x:oob").add("url").add_text("http://a/?b=1&c=2");
  mam::add_stanza_id(m, "abc", "juliet@capulet.lit");
  auto back = herald::xml::parse_element(herald::xml::serialize(m));
  REQUIRE(back);
  CHECK(*back == m);
}

// --- queries -----------------------------------------------------------------------------------

TEST_CASE("query: empty query is everything, first page of the default size") {
  auto r = parse("<query xmlns='urn:xmpp:mam:2'/>");
  REQUIRE_FALSE(r.error);
  CHECK(r.queryid.empty());
  CHECK_FALSE(r.query.with);
  CHECK_FALSE(r.query.start);
  CHECK_FALSE(r.query.end);
  CHECK_FALSE(r.query.after_id);
  CHECK_FALSE(r.query.before_id);
  CHECK(r.query.ids.empty());
  CHECK(r.query.max == 50);
  CHECK_FALSE(r.query.from_end);
  CHECK_FALSE(r.flip_page);
}

TEST_CASE("query: the default page never exceeds the configured maximum") {
  auto r = parse("<query xmlns='urn:xmpp:mam:2'/>", mam::PageLimits{50, 10});
  CHECK(r.query.max == 10);
}

TEST_CASE("query: queryid is kept") {
  auto r = parse(query_xml(""));
  CHECK(r.queryid == "q1");
}

TEST_CASE("query: with, start and end") {
  auto r = parse(query_xml(field("with", "Juliet@Capulet.lit") + field("start", "2010-06-07T00:00:00Z") +
                           field("end", "2010-07-07T13:23:54.5+01:00")));
  REQUIRE_FALSE(r.error);
  REQUIRE(r.query.with);
  CHECK(*r.query.with == "juliet@capulet.lit");  // prepared
  CHECK(*r.query.start == utc(2010, 6, 7));
  CHECK(*r.query.end == utc(2010, 7, 7, 12, 23, 54, 500000));
}

TEST_CASE("query: a full JID in 'with' matches by its bare JID") {
  auto r = parse(query_xml(field("with", "romeo@montague.lit/orchard")));
  REQUIRE_FALSE(r.error);
  CHECK(*r.query.with == "romeo@montague.lit");
}

TEST_CASE("query: a domain in 'with' is kept as is") {
  auto r = parse(query_xml(field("with", "montague.lit")));
  REQUIRE_FALSE(r.error);
  CHECK(*r.query.with == "montague.lit");
}

TEST_CASE("query: bad values are bad-request") {
  expect_error(parse(query_xml(field("with", "not@@a@jid"))), StanzaError::bad_request);
  expect_error(parse(query_xml(field("start", "yesterday"))), StanzaError::bad_request);
  expect_error(parse(query_xml(field("end", "2010-07-07"))), StanzaError::bad_request);
  expect_error(parse(query_xml("<field var='with'><value>a@b</value><value>c@d</value></field>")), StanzaError::bad_request);
  expect_error(parse(query_xml(field("with", "a@b") + field("with", "c@d"))), StanzaError::bad_request);
}

TEST_CASE("query: a wrong FORM_TYPE or form type is bad-request") {
  expect_error(parse("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                     "<value>urn:xmpp:mam:1</value></field></x></query>"),
               StanzaError::bad_request);
  expect_error(parse("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='cancel'/></query>"), StanzaError::bad_request);
}

TEST_CASE("query: a form without FORM_TYPE or type is accepted") {
  auto r = parse("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='with'><value>a@b.c</value></field></x></query>");
  REQUIRE_FALSE(r.error);
  CHECK(*r.query.with == "a@b.c");
}

TEST_CASE("query: unknown fields are feature-not-implemented (XEP-0313 4.1.5)") {
  expect_error(parse(query_xml(field("include-groupchat", "true"))), StanzaError::feature_not_implemented);
  expect_error(parse(query_xml(field("{http://example.com/}free-text-search", "Juliet"))), StanzaError::feature_not_implemented);
  expect_error(parse(query_xml(field("withtext", "x"))), StanzaError::feature_not_implemented);
}

TEST_CASE("query: empty values mean the field is absent") {
  auto r = parse(query_xml("<field var='with'/><field var='start'><value></value></field><field var='after-id'/>"));
  REQUIRE_FALSE(r.error);
  CHECK_FALSE(r.query.with);
  CHECK_FALSE(r.query.start);
  CHECK_FALSE(r.query.after_id);
}

TEST_CASE("query: before-id, after-id and ids (urn:xmpp:mam:2#extended)") {
  auto r = parse(query_xml(field("after-id", "A") + field("before-id", "B") +
                           "<field var='ids'><value>x</value><value>y</value><value>x</value><value/></field>"));
  REQUIRE_FALSE(r.error);
  CHECK(*r.query.after_id == "A");
  CHECK(*r.query.before_id == "B");
  CHECK(r.query.ids == std::vector<std::string>{"x", "y"});
  CHECK_FALSE(r.query.from_end);  // before-id does not page backwards
}

TEST_CASE("rsm: max sets the page size, capped by the server") {
  CHECK(parse(query_xml("", "<max>10</max>")).query.max == 10);
  CHECK(parse(query_xml("", "<max>0</max>")).query.max == 0);
  CHECK(parse(query_xml("", "<max>100000</max>"), mam::PageLimits{50, 250}).query.max == 250);
  CHECK(parse(query_xml("", "<max>99999999999999999999999999</max>"), mam::PageLimits{50, 250}).query.max == 250);
}

TEST_CASE("rsm: a bad max is bad-request") {
  for (const char* bad : {"<max/>", "<max>-1</max>", "<max>ten</max>", "<max>1 </max>", "<max>+3</max>", "<max>1.5</max>"}) {
    CAPTURE(bad);
    expect_error(parse(query_xml("", bad)), StanzaError::bad_request);
  }
}

TEST_CASE("rsm: after pages forward") {
  auto r = parse(query_xml("", "<max>10</max><after>09af3-cc343-b409f</after>"));
  REQUIRE_FALSE(r.error);
  CHECK(*r.query.after_id == "09af3-cc343-b409f");
  CHECK_FALSE(r.query.from_end);
}

TEST_CASE("rsm: an empty before is the last page") {
  auto r = parse(query_xml(field("start", "2010-08-07T00:00:00Z"), "<max>10</max><before/>"));
  REQUIRE_FALSE(r.error);
  CHECK(r.query.from_end);
  CHECK_FALSE(r.query.before_id);
  CHECK(r.query.max == 10);
}

TEST_CASE("rsm: before with an id is the page before it") {
  auto r = parse(query_xml("", "<before>B</before>"));
  REQUIRE_FALSE(r.error);
  CHECK(r.query.from_end);
  CHECK(*r.query.before_id == "B");
}

TEST_CASE("rsm: the page cursor takes precedence over the form's bounds") {
  auto r = parse(query_xml(field("after-id", "A") + field("before-id", "Z"), "<after>M</after>"));
  REQUIRE_FALSE(r.error);
  CHECK(*r.query.after_id == "M");
  CHECK(*r.query.before_id == "Z");
  auto b = parse(query_xml(field("after-id", "A") + field("before-id", "Z"), "<before>M</before>"));
  CHECK(*b.query.after_id == "A");
  CHECK(*b.query.before_id == "M");
  CHECK(b.query.from_end);
}

TEST_CASE("rsm: index is feature-not-implemented") {
  expect_error(parse(query_xml("", "<max>10</max><index>3</index>")), StanzaError::feature_not_implemented);
}

TEST_CASE("rsm: a <set/> without a form works, and elements of other namespaces are ignored") {
  auto r = parse("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>5</max>"
                 "<index xmlns='urn:other'>3</index></set></query>");
  REQUIRE_FALSE(r.error);
  CHECK(r.query.max == 5);
}

TEST_CASE("query: flip-page") {
  CHECK(parse(query_xml("", "<max>10</max>", "<flip-page/>")).flip_page);
  CHECK_FALSE(parse(query_xml("", "<max>10</max>", "<flip-page xmlns='urn:other'/>")).flip_page);
}

TEST_CASE("query: a node is item-not-found for a user archive") {
  expect_error(parse("<query xmlns='urn:xmpp:mam:2' node='urn:xmpp:mucsub:nodes:messages'/>"), StanzaError::item_not_found);
}

// --- elements sent back ------------------------------------------------------------------------

TEST_CASE("form: every field of XEP-0313 4.1.5, ids open") {
  const auto q = mam::query_form();
  CHECK(q.name() == "query");
  CHECK(q.ns() == "urn:xmpp:mam:2");
  const auto* x = q.child("x", "jabber:x:data");
  REQUIRE(x);
  CHECK(x->attr_or("type") == "form");
  std::vector<std::string> vars;
  for (const auto* f : x->elements()) vars.emplace_back(f->attr_or("var"));
  CHECK(vars == std::vector<std::string>{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"});
  const auto* form_type = x->elements().front();
  CHECK(form_type->attr_or("type") == "hidden");
  CHECK(form_type->child_text("value", "jabber:x:data") == "urn:xmpp:mam:2");
  const auto* ids = x->elements().back();
  CHECK(ids->attr_or("type") == "list-multi");
  const auto* validate = ids->child("validate", "http://jabber.org/protocol/xdata-validate");
  REQUIRE(validate);
  CHECK(validate->child("open", "http://jabber.org/protocol/xdata-validate"));
  for (const auto* f : x->elements()) CHECK_FALSE(f->child("required", "jabber:x:data"));  // never required
}

TEST_CASE("form: the server's own form is accepted back (as submit)") {
  auto form = mam::query_form();
  form.child("x", "jabber:x:data")->set_attr("type", "submit");
  auto r = mam::parse_query(form, {});
  CHECK_FALSE(r.error);
}

TEST_CASE("result message: forwarded original with delay, queryid and archive id") {
  st::ArchivedMessage a;
  a.id = "28482-98726-73623";
  a.with = "romeo@montague.lit";
  a.stamp = utc(2010, 7, 10, 23, 8, 25);
  auto original = xml("<message from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='chat'><body>Hail</body></message>");
  const auto m = mam::result_message("juliet@capulet.lit/chamber", "juliet@capulet.lit", "f27", a, original);
  CHECK(m.name() == "message");
  CHECK(m.attr_or("to") == "juliet@capulet.lit/chamber");
  CHECK(m.attr_or("from") == "juliet@capulet.lit");
  const auto* result = m.child("result", "urn:xmpp:mam:2");
  REQUIRE(result);
  CHECK(result->attr_or("queryid") == "f27");
  CHECK(result->attr_or("id") == "28482-98726-73623");
  const auto* fwd = result->child("forwarded", "urn:xmpp:forward:0");
  REQUIRE(fwd);
  const auto* delay = fwd->child("delay", "urn:xmpp:delay");
  REQUIRE(delay);
  CHECK(delay->attr_or("stamp") == "2010-07-10T23:08:25Z");
  const auto* inner = fwd->child("message", "jabber:client");
  REQUIRE(inner);
  CHECK(*inner == original);
  // On the wire the forwarded message carries its namespace.
  const auto wire = herald::xml::serialize(m);
  CHECK(wire.find("<message xmlns='jabber:client'") != std::string::npos);
}

TEST_CASE("result message: without queryid there is no attribute") {
  st::ArchivedMessage a;
  a.id = "x";
  const auto m = mam::result_message("a@b/c", "a@b", "", a, xml("<message/>"));
  CHECK_FALSE(m.child("result", "urn:xmpp:mam:2")->attr("queryid"));
}

std::vector<st::ArchivedMessage> sized(std::initializer_list<std::size_t> sizes) {
  std::vector<st::ArchivedMessage> out;
  for (auto n : sizes) {
    st::ArchivedMessage m;
    m.id = std::to_string(out.size());
    m.stanza = std::string(n, 'x');
    out.push_back(std::move(m));
  }
  return out;
}

TEST_CASE("page window: everything fits") {
  const auto page = sized({10, 10, 10});
  CHECK(mam::page_window(page, false, 1000, 0) == std::pair<std::size_t, std::size_t>{0, 3});
  CHECK(mam::page_window(page, true, 1000, 0) == std::pair<std::size_t, std::size_t>{0, 3});
  CHECK(mam::page_window({}, false, 1000, 0) == std::pair<std::size_t, std::size_t>{0, 0});
  CHECK(mam::page_window({}, true, 1000, 0) == std::pair<std::size_t, std::size_t>{0, 0});
}

TEST_CASE("page window: forward keeps the start, backward the end") {
  const auto page = sized({40, 40, 40, 40});
  CHECK(mam::page_window(page, false, 100, 5) == std::pair<std::size_t, std::size_t>{0, 2});
  CHECK(mam::page_window(page, true, 100, 5) == std::pair<std::size_t, std::size_t>{2, 4});
  CHECK(mam::page_window(page, false, 90, 5) == std::pair<std::size_t, std::size_t>{0, 2});
  CHECK(mam::page_window(page, false, 89, 5) == std::pair<std::size_t, std::size_t>{0, 1});
}

TEST_CASE("page window: one message is always sent, however large") {
  const auto page = sized({5000, 10});
  CHECK(mam::page_window(page, false, 100, 0) == std::pair<std::size_t, std::size_t>{0, 1});
  const auto back = sized({10, 5000});
  CHECK(mam::page_window(back, true, 100, 0) == std::pair<std::size_t, std::size_t>{1, 2});
}

TEST_CASE("fin: complete page with first (index), last and count") {
  mam::PageSummary p;
  p.first = "A";
  p.last = "B";
  p.first_index = 0;
  p.count = 16;
  p.complete = true;
  const auto f = mam::fin(p);
  CHECK(f.name() == "fin");
  CHECK(f.ns() == "urn:xmpp:mam:2");
  CHECK(f.attr_or("complete") == "true");
  const auto* set = f.child("set", "http://jabber.org/protocol/rsm");
  REQUIRE(set);
  const auto* first = set->child("first", "http://jabber.org/protocol/rsm");
  REQUIRE(first);
  CHECK(first->text() == "A");
  CHECK(first->attr_or("index") == "0");
  CHECK(set->child_text("last", "http://jabber.org/protocol/rsm") == "B");
  CHECK(set->child_text("count", "http://jabber.org/protocol/rsm") == "16");
}

TEST_CASE("fin: incomplete page has no complete attribute; no index when unknown") {
  mam::PageSummary p;
  p.first = "A";
  p.last = "A";
  p.count = 3;
  p.complete = false;
  const auto f = mam::fin(p);
  CHECK_FALSE(f.attr("complete"));
  const auto* first = f.child("set", "http://jabber.org/protocol/rsm")->child("first", "http://jabber.org/protocol/rsm");
  CHECK_FALSE(first->attr("index"));
}

TEST_CASE("fin: an empty page has only the count (XEP-0059 2.6)") {
  mam::PageSummary p;
  p.count = 0;
  const auto f = mam::fin(p);
  const auto* set = f.child("set", "http://jabber.org/protocol/rsm");
  REQUIRE(set);
  REQUIRE(set->elements().size() == 1);
  CHECK(set->elements().front()->name() == "count");
  CHECK(set->elements().front()->text() == "0");
}

TEST_CASE("metadata: start and end, or empty") {
  CHECK(mam::metadata_element(std::nullopt).elements().empty());
  st::ArchivedMessage a, b;
  a.id = "first";
  a.stamp = utc(2008, 8, 22, 21, 9, 4);
  b.id = "last";
  b.stamp = utc(2020, 4, 20, 14, 34, 21, 250000);
  const auto m = mam::metadata_element(std::make_pair(a, b));
  CHECK(m.name() == "metadata");
  CHECK(m.ns() == "urn:xmpp:mam:2");
  const auto* start = m.child("start", "urn:xmpp:mam:2");
  const auto* end = m.child("end", "urn:xmpp:mam:2");
  REQUIRE(start);
  REQUIRE(end);
  CHECK(start->attr_or("id") == "first");
  CHECK(start->attr_or("timestamp") == "2008-08-22T21:09:04Z");
  CHECK(end->attr_or("id") == "last");
  CHECK(end->attr_or("timestamp") == "2020-04-20T14:34:21.250000Z");
}

// --- preferences -------------------------------------------------------------------------------

TEST_CASE("prefs: parse default and lists (bare, sorted, unique)") {
  auto r = mam::parse_prefs(xml("<prefs xmlns='urn:xmpp:mam:2' default='roster'>"
                                "<always><jid>romeo@montague.lit</jid><jid>Benvolio@montague.lit/x</jid>"
                                "<jid>romeo@montague.lit</jid></always>"
                                "<never><jid>montague@montague.lit</jid></never></prefs>"));
  REQUIRE_FALSE(r.error);
  CHECK(r.prefs.default_mode == Default::roster);
  CHECK(r.prefs.always == std::vector<std::string>{"benvolio@montague.lit", "romeo@montague.lit"});
  CHECK(r.prefs.never == std::vector<std::string>{"montague@montague.lit"});
}

TEST_CASE("prefs: missing lists are empty") {
  auto r = mam::parse_prefs(xml("<prefs xmlns='urn:xmpp:mam:2' default='never'/>"));
  REQUIRE_FALSE(r.error);
  CHECK(r.prefs.default_mode == Default::never);
  CHECK(r.prefs.always.empty());
  CHECK(r.prefs.never.empty());
}

TEST_CASE("prefs: bad default or JID is bad-request") {
  for (const char* bad : {"<prefs xmlns='urn:xmpp:mam:2'/>", "<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>",
                          "<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@@</jid></always></prefs>",
                          "<prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid></jid></never></prefs>"}) {
    CAPTURE(bad);
    auto r = mam::parse_prefs(xml(bad));
    REQUIRE(r.error);
    CHECK(r.error->error == StanzaError::bad_request);
  }
}

TEST_CASE("prefs: element round-trip") {
  st::ArchivePrefs p;
  p.default_mode = Default::roster;
  p.always = {"a@b.c", "d@e.f"};
  p.never = {"x@y.z"};
  const auto el = mam::prefs_element(p);
  CHECK(el.attr_or("default") == "roster");
  CHECK(el.child("always", "urn:xmpp:mam:2"));
  CHECK(el.child("never", "urn:xmpp:mam:2"));
  auto back = mam::parse_prefs(el);
  REQUIRE_FALSE(back.error);
  CHECK(back.prefs == p);
  // Empty lists are still written (clients expect both elements).
  const auto empty = mam::prefs_element(st::ArchivePrefs{});
  CHECK(empty.attr_or("default") == "always");
  REQUIRE(empty.child("always", "urn:xmpp:mam:2"));
  CHECK(empty.child("always", "urn:xmpp:mam:2")->elements().empty());
  REQUIRE(empty.child("never", "urn:xmpp:mam:2"));
}

TEST_CASE("prefs: default names") {
  for (auto d : {Default::always, Default::never, Default::roster}) CHECK(*mam::default_from_name(mam::default_name(d)) == d);
  CHECK_FALSE(mam::default_from_name("Always"));
  CHECK_FALSE(mam::default_from_name(""));
}

TEST_CASE("should_archive: never wins over always, then the default") {
  st::ArchivePrefs p;
  p.always = {"both@x.y", "friend@x.y"};
  p.never = {"both@x.y", "foe@x.y"};
  for (auto d : {Default::always, Default::never, Default::roster}) {
    p.default_mode = d;
    CAPTURE(mam::default_name(d));
    CHECK_FALSE(mam::should_archive(p, "both@x.y", true));
    CHECK_FALSE(mam::should_archive(p, "foe@x.y", true));
    CHECK(mam::should_archive(p, "friend@x.y", false));
    CHECK_FALSE(mam::needs_roster(p, "both@x.y"));
    CHECK_FALSE(mam::needs_roster(p, "friend@x.y"));
  }
  p.default_mode = Default::always;
  CHECK(mam::should_archive(p, "stranger@x.y", false));
  CHECK_FALSE(mam::needs_roster(p, "stranger@x.y"));
  p.default_mode = Default::never;
  CHECK_FALSE(mam::should_archive(p, "stranger@x.y", true));
  p.default_mode = Default::roster;
  CHECK(mam::needs_roster(p, "stranger@x.y"));
  CHECK(mam::should_archive(p, "stranger@x.y", true));
  CHECK_FALSE(mam::should_archive(p, "stranger@x.y", false));
}

// --- what is archived --------------------------------------------------------------------------

TEST_CASE("archivable: chat and normal with a body") {
  CHECK(mam::archivable(xml("<message type='chat'><body>hi</body></message>")));
  CHECK(mam::archivable(xml("<message type='normal'><body>hi</body></message>")));
  CHECK(mam::archivable(xml("<message><body>hi</body></message>")));
  CHECK(mam::archivable(xml("<message xmlns='jabber:server' type='chat'><body>hi</body></message>")));
}

TEST_CASE("archivable: never error, groupchat or headline") {
  for (const char* type : {"error", "groupchat", "headline", "bogus"}) {
    CAPTURE(type);
    CHECK_FALSE(mam::archivable(xml(std::string("<message type='") + type + "'><body>hi</body></message>")));
  }
}

TEST_CASE("archivable: no body and no payload is not archived (chat states, receipts)") {
  CHECK_FALSE(mam::archivable(xml("<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")));
  CHECK_FALSE(mam::archivable(xml("<message type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>")));
  CHECK_FALSE(mam::archivable(xml("<message type='chat'/>")));
  CHECK_FALSE(mam::archivable(xml("<message type='chat'><body xmlns='urn:other'>x</body></message>")));
}

TEST_CASE("archivable: end-to-end encrypted payloads") {
  CHECK(mam::archivable(xml("<message type='chat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>")));
  CHECK(mam::archivable(xml("<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>")));
  CHECK(mam::archivable(xml("<message type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>")));
  CHECK(mam::archivable(xml("<message><x xmlns='jabber:x:encrypted'>x</x></message>")));
}

TEST_CASE("archivable: XEP-0334 hints") {
  CHECK_FALSE(mam::archivable(xml("<message type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>")));
  CHECK_FALSE(mam::archivable(xml("<message type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>")));
  CHECK(mam::archivable(xml("<message type='chat'><store xmlns='urn:xmpp:hints'/><x xmlns='urn:custom'/></message>")));
  CHECK_FALSE(mam::archivable(xml("<message type='headline'><store xmlns='urn:xmpp:hints'/></message>")));
  CHECK_FALSE(mam::archivable(xml("<message type='chat'><store xmlns='urn:xmpp:hints'/><no-store xmlns='urn:xmpp:hints'/></message>")));
  CHECK(mam::archivable(xml("<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>")));
}

TEST_CASE("archivable: only messages") {
  CHECK_FALSE(mam::archivable(xml("<presence><body>x</body></presence>")));
  CHECK_FALSE(mam::archivable(xml("<iq type='set'><body>x</body></iq>")));
}

// --- stanza ids ----------------------------------------------------------------------------------

TEST_CASE("stanza-id: claims of the archive's JID are removed, others and origin-id stay") {
  auto m = xml("<message to='juliet@capulet.lit'><body>x</body>"
               "<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='juliet@capulet.lit'/>"
               "<stanza-id xmlns='urn:xmpp:sid:0' id='forged2' by='Juliet@Capulet.Lit'/>"
               "<stanza-id xmlns='urn:xmpp:sid:0' id='room' by='room@muc.example.com'/>"
               "<stanza-id xmlns='urn:xmpp:sid:0' id='full' by='juliet@capulet.lit/balcony'/>"
               "<stanza-id xmlns='urn:other' id='other' by='juliet@capulet.lit'/>"
               "<stanza-id xmlns='urn:xmpp:sid:0' id='noby'/>"
               "<stanza-id xmlns='urn:xmpp:sid:0' id='badby' by='@@'/>"
               "<origin-id xmlns='urn:xmpp:sid:0' id='origin'/></message>");
  CHECK(mam::strip_stanza_ids(m, jid("juliet@capulet.lit")) == 2);
  std::vector<std::string> left;
  for (const auto* c : m.elements()) left.emplace_back(c->attr_or("id"));
  CHECK(left == std::vector<std::string>{"", "room", "full", "other", "noby", "badby", "origin"});
  CHECK(mam::strip_stanza_ids(m, jid("juliet@capulet.lit")) == 0);
}

TEST_CASE("stanza-id: added with id and by") {
  auto m = xml("<message><body>x</body></message>");
  mam::add_stanza_id(m, "abc", "juliet@capulet.lit");
  const auto* sid = m.child("stanza-id", "urn:xmpp:sid:0");
  REQUIRE(sid);
  CHECK(sid->attr_or("id") == "abc");
  CHECK(sid->attr_or("by") == "juliet@capulet.lit");
  CHECK(sid->elements().empty());
  CHECK(find(m, "body"));
}
