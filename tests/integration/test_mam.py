"""Message Archive Management (XEP-0313, urn:xmpp:mam:2): what is archived (both sides of
a conversation, preferences, XEP-0334 hints, blocked senders, notes to self, offline
messages), queries (with, start/end, before-id/after-id/ids, RSM paging both ways with
count and complete, flipped pages, the form, errors), preferences (XEP-0441), metadata,
access control, a real client (slixmpp's xep_0313), archiving disabled, and retention.

Every test uses fresh accounts (flows.new_user), so each archive starts empty. The
helpers here are also used by test_stanza_id.py."""
from xml.sax.saxutils import escape, quoteattr

import pytest

import harness
import rawclient as rc
import slixclient as sx
from flows import (assert_error, assert_result, bare, befriend, block, disco_features,
                   error_for, is_iq, is_message, login, new_users, online, take)
from rawclient import NS_CLIENT, q

NS_MAM = "urn:xmpp:mam:2"
NS_MAM_EXTENDED = "urn:xmpp:mam:2#extended"
NS_SID = "urn:xmpp:sid:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_XDATA = "jabber:x:data"
NS_HINTS = "urn:xmpp:hints"


# ---------------------------------------------------------------- helpers

def field_xml(var, value):
    values = value if isinstance(value, (list, tuple)) else [value]
    inner = "".join(f"<value>{escape(v)}</value>" for v in values)
    return f"<field var={quoteattr(var)}>{inner}</field>"


def query_xml(fields=(), rsm="", queryid="", extra=""):
    form = ""
    if fields:
        form = (f"<x xmlns='{NS_XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                f"<value>{NS_MAM}</value></field>"
                + "".join(field_xml(k, v) for k, v in fields) + "</x>")
    rsm_xml = f"<set xmlns='{NS_RSM}'>{rsm}</set>" if rsm else ""
    qid = f" queryid={quoteattr(queryid)}" if queryid else ""
    return f"<query xmlns='{NS_MAM}'{qid}>{form}{rsm_xml}{extra}</query>"


def is_result(el, queryid=None):
    if el.tag != q(NS_CLIENT, "message"):
        return False
    r = el.find(q(NS_MAM, "result"))
    return r is not None and (queryid is None or r.get("queryid") == queryid)


class Result:
    """One <result/> message: archive id, delay stamp, the forwarded message."""

    def __init__(self, el):
        self.el = el
        r = el.find(q(NS_MAM, "result"))
        self.queryid = r.get("queryid")
        self.id = r.get("id")
        fwd = r.find(q(NS_FORWARD, "forwarded"))
        assert fwd is not None, f"<result/> without <forwarded/>: {rc.show(el)}"
        delay = fwd.find(q(NS_DELAY, "delay"))
        assert delay is not None, f"<forwarded/> without <delay/>: {rc.show(el)}"
        self.stamp = delay.get("stamp")
        self.message = fwd.find(q(NS_CLIENT, "message"))
        assert self.message is not None, f"<forwarded/> without a jabber:client message: {rc.show(el)}"

    @property
    def body(self):
        return self.message.findtext(q(NS_CLIENT, "body"))


def mam_query(c, fields=(), rsm="", extra="", to=None, queryid=None):
    """Sends a query; returns (answer iq, [Result]) once the answer arrived. Asserts that
    every result came before the answer, to the querying resource, from the archive."""
    id = rc.new_id("mam")
    queryid = queryid or f"q-{id}"
    attrs = f" to={quoteattr(to)}" if to else ""
    c.send(f"<iq type='set' id='{id}'{attrs}>{query_xml(fields, rsm, queryid, extra)}</iq>")
    results = []
    while True:
        el = take(c, lambda e: is_iq(e, id) or is_result(e, queryid), what=f"results of MAM query {id}")
        if is_iq(el, id):
            return el, results
        assert el.get("to") == c.jid, f"result to {el.get('to')}, not the querying resource: {rc.show(el)}"
        assert el.get("from") in (None, to or bare(c.jid)), f"result from elsewhere: {rc.show(el)}"
        results.append(Result(el))


def fin(answer):
    """The <fin/> of a successful query as a dict."""
    assert_result(answer, "MAM query")
    f = answer.find(q(NS_MAM, "fin"))
    assert f is not None, f"query result without <fin/>: {rc.show(answer)}"
    s = f.find(q(NS_RSM, "set"))
    assert s is not None, f"<fin/> without an RSM <set/>: {rc.show(answer)}"
    first = s.find(q(NS_RSM, "first"))
    count = s.findtext(q(NS_RSM, "count"))
    return {
        "complete": f.get("complete") in ("true", "1"),
        "first": None if first is None else first.text,
        "index": None if first is None or first.get("index") is None else int(first.get("index")),
        "last": s.findtext(q(NS_RSM, "last")),
        "count": None if count is None else int(count),
    }


def archive(c, **kw):
    """(fin dict, [Result]) of a successful query."""
    answer, results = mam_query(c, **kw)
    return fin(answer), results


def bodies(results):
    return [r.body for r in results]


def stanza_ids(el, by=None):
    """The <stanza-id/> elements of a stanza (with that 'by')."""
    return [s for s in el.findall(q(NS_SID, "stanza-id")) if by is None or s.get("by") == by]


def message_from(c, body, timeout=None):
    return take(c, lambda e: is_message(e, body), timeout, what=f"the message {body!r}")


def send_all(c, to, texts, type_="chat", extra=""):
    """Sends the messages and waits until the server processed them (archived included:
    routing finishes before the next stanza of the session is read)."""
    for t in texts:
        c.message(to, t, type_=type_, extra=extra)
    c.sync()


def close_all(*sessions):
    for s in sessions:
        s.close()


def prefs_iq(c, type_, inner="", to=None, default=None):
    d = "" if default is None else f" default={quoteattr(default)}"
    return c.iq(type_, f"<prefs xmlns='{NS_MAM}'{d}>{inner}</prefs>", to=to)


def jids_xml(tag, jids):
    return f"<{tag}>" + "".join(f"<jid>{escape(j)}</jid>" for j in jids) + f"</{tag}>"


def prefs_of(answer):
    assert_result(answer, "MAM preferences")
    p = answer.find(q(NS_MAM, "prefs"))
    assert p is not None, f"no <prefs/> in the result: {rc.show(answer)}"

    def jids(tag):
        el = p.find(q(NS_MAM, tag))
        return [] if el is None else sorted(j.text for j in el.findall(q(NS_MAM, "jid")))
    return p.get("default"), jids("always"), jids("never")


def set_prefs(c, default, always=(), never=()):
    answer = prefs_iq(c, "set", jids_xml("always", always) + jids_xml("never", never), default=default)
    assert prefs_of(answer) == (default, sorted(always), sorted(never))


# ---------------------------------------------------------------- discovery

def test_account_advertises_mam_and_stanza_ids(server):
    (user,) = new_users(server, "mdi")
    c = online(server, user)
    try:
        features = disco_features(c, domain=user)
        assert {NS_MAM, NS_MAM_EXTENDED, NS_SID} <= features
    finally:
        c.close()


def test_query_form(server):
    """4.1.5: the form lists the mandatory fields; ids is open (XEP-0122)."""
    (user,) = new_users(server, "mfo")
    c = online(server, user)
    try:
        answer = assert_result(c.iq("get", f"<query xmlns='{NS_MAM}'/>"), "form request")
        x = answer.find(f"{q(NS_MAM, 'query')}/{q(NS_XDATA, 'x')}")
        assert x is not None and x.get("type") == "form", rc.show(answer)
        fields = {f.get("var"): f for f in x.findall(q(NS_XDATA, "field"))}
        assert {"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"} <= set(fields)
        assert fields["FORM_TYPE"].findtext(q(NS_XDATA, "value")) == NS_MAM
        validate = fields["ids"].find("{http://jabber.org/protocol/xdata-validate}validate")
        assert validate is not None and validate.find("{http://jabber.org/protocol/xdata-validate}open") is not None
    finally:
        c.close()


# ---------------------------------------------------------------- archiving

def test_message_archived_for_both_parties(server):
    """A chat message is in the sender's and the recipient's archive; the delivered copy
    carries <stanza-id by=recipient/> equal to the recipient's archive id; the sender's
    copy on the wire carries no stanza-id of the sender."""
    a, b = new_users(server, "mba", "mbb")
    ca = online(server, a, "desk")
    cb = online(server, b, "phone")
    try:
        ca.message(cb.jid, "Call me but love")
        got = message_from(cb, "Call me but love")
        sids = stanza_ids(got)
        assert len(sids) == 1 and sids[0].get("by") == b, f"expected one stanza-id by {b}: {rc.show(got)}"
        sid = sids[0].get("id")
        assert sid

        f, results = archive(cb)
        assert bodies(results) == ["Call me but love"]
        r = results[0]
        assert r.id == sid, "the archive id is the stanza-id the recipient got"
        assert r.message.get("from") == ca.jid and r.message.get("to") == cb.jid, rc.show(r.el)
        assert r.stamp and r.stamp.endswith("Z"), r.stamp
        assert f == {"complete": True, "first": sid, "index": 0, "last": sid, "count": 1}

        f, results = archive(ca)
        assert bodies(results) == ["Call me but love"]
        assert results[0].id != sid, "each archive has its own ids"
        assert results[0].message.get("to") == cb.jid
        assert f["count"] == 1 and f["complete"]
    finally:
        close_all(ca, cb)


def test_query_with_filters_by_contact(server):
    a, b, c = new_users(server, "mwa", "mwb", "mwc")
    ca, cb, cc = online(server, a), online(server, b), online(server, c)
    try:
        send_all(ca, b, ["to b 1", "to b 2"])
        send_all(cc, a, ["from c"])
        send_all(cb, a, ["from b"])
        f, results = archive(ca)
        assert bodies(results) == ["to b 1", "to b 2", "from c", "from b"]
        assert f["count"] == 4
        _, results = archive(ca, fields=[("with", b)])
        assert bodies(results) == ["to b 1", "to b 2", "from b"]
        # A full JID matches by its bare JID.
        _, results = archive(ca, fields=[("with", cc.jid)])
        assert bodies(results) == ["from c"]
        f, results = archive(ca, fields=[("with", "nobody@localhost")])
        assert results == [] and f["count"] == 0 and f["complete"]
        assert f["first"] is None and f["last"] is None
    finally:
        close_all(ca, cb, cc)


def test_query_start_and_end(server):
    """4.1.3: start and end are inclusive; stamps from the results select exactly."""
    a, b = new_users(server, "mta", "mtb")
    ca, cb = online(server, a), online(server, b)
    try:
        send_all(ca, b, [f"t{i}" for i in range(4)])
        _, results = archive(ca)
        stamps = [r.stamp for r in results]
        assert stamps == sorted(stamps), stamps
        _, r = archive(ca, fields=[("start", stamps[1])])
        assert bodies(r) == ["t1", "t2", "t3"]
        _, r = archive(ca, fields=[("end", stamps[2])])
        assert bodies(r) == ["t0", "t1", "t2"]
        _, r = archive(ca, fields=[("start", stamps[1]), ("end", stamps[2])])
        assert bodies(r) == ["t1", "t2"]
        _, r = archive(ca, fields=[("start", "2000-01-01T00:00:00Z"), ("end", "2000-01-02T00:00:00+02:00")])
        assert r == []
        _, r = archive(ca, fields=[("start", "2999-01-01T00:00:00.5Z")])
        assert r == []
        _, r = archive(ca, fields=[("start", "2000-01-01T00:00:00-05:00"), ("with", b)])
        assert bodies(r) == ["t0", "t1", "t2", "t3"]
    finally:
        close_all(ca, cb)


def test_paging_forward_and_backward(server):
    """RSM through 27 messages: forward with <after/>, backward from an empty <before/>,
    with count, first index and complete on the last page only."""
    a, b = new_users(server, "mpa", "mpb")
    ca, cb = online(server, a), online(server, b)
    texts = [f"p{i:02d}" for i in range(27)]
    try:
        send_all(ca, b, texts)
        # forward
        seen, after, pages = [], None, []
        while True:
            rsm = "<max>10</max>" + (f"<after>{after}</after>" if after else "")
            f, results = archive(cb, rsm=rsm)
            pages.append(f)
            assert f["count"] == 27
            assert f["index"] == len(seen)
            assert f["first"] == results[0].id and f["last"] == results[-1].id
            seen += bodies(results)
            after = f["last"]
            if f["complete"]:
                break
            assert len(pages) < 5, "paging does not end"
        assert seen == texts
        assert [len(p) for p in pages] and len(pages) == 3
        assert [p["complete"] for p in pages] == [False, False, True]

        # backward: the last page first, each page still oldest first
        seen, before, pages = [], "", []
        while True:
            f, results = archive(cb, rsm=f"<max>10</max><before>{before}</before>")
            pages.append(f)
            assert f["count"] == 27
            assert f["index"] == 27 - len(seen) - len(results)
            seen = bodies(results) + seen
            before = f["first"]
            if f["complete"]:
                break
            assert len(pages) < 5, "paging does not end"
        assert seen == texts
        assert len(pages) == 3 and [p["complete"] for p in pages] == [False, False, True]

        # the default page is not everything only when there is more than it
        f, results = archive(cb)
        assert len(results) == 27 and f["complete"]
    finally:
        close_all(ca, cb)


def test_ids_before_id_after_id_and_flip_page(server):
    a, b = new_users(server, "mia", "mib")
    ca, cb = online(server, a), online(server, b)
    try:
        send_all(ca, b, [f"i{i}" for i in range(10)])
        _, results = archive(ca)
        ids = [r.id for r in results]
        _, r = archive(ca, fields=[("after-id", ids[4])])
        assert bodies(r) == ["i5", "i6", "i7", "i8", "i9"]
        _, r = archive(ca, fields=[("before-id", ids[2])])
        assert bodies(r) == ["i0", "i1"]
        f, r = archive(ca, fields=[("after-id", ids[4]), ("before-id", ids[9])])
        assert bodies(r) == ["i5", "i6", "i7", "i8"] and f["complete"]
        # before-id does not page backwards (unlike RSM <before/>)
        f, r = archive(ca, fields=[("before-id", ids[9])], rsm="<max>3</max>")
        assert bodies(r) == ["i0", "i1", "i2"] and not f["complete"]
        # a range paged with RSM inside it
        f, r = archive(ca, fields=[("after-id", ids[1]), ("before-id", ids[8])], rsm=f"<max>2</max><after>{ids[3]}</after>")
        assert bodies(r) == ["i4", "i5"] and not f["complete"]
        _, r = archive(ca, fields=[("ids", [ids[7], ids[3]])])
        assert bodies(r) == ["i3", "i7"]
        _, r = archive(ca, fields=[("ids", [ids[0]])])
        assert bodies(r) == ["i0"]
        # flipped page: same page, newest first; <first/> and <last/> unchanged
        f, r = archive(ca, rsm="<max>4</max>", extra=f"<flip-page xmlns='{NS_MAM}'/>")
        assert bodies(r) == ["i3", "i2", "i1", "i0"]
        assert f["first"] == ids[0] and f["last"] == ids[3]
        # max 0: only the count
        f, r = archive(ca, rsm="<max>0</max>")
        assert r == [] and f["count"] == 10
    finally:
        close_all(ca, cb)


@pytest.mark.parametrize("how", ["after-id", "before-id", "ids", "rsm-after", "rsm-before"])
def test_unknown_id_is_item_not_found(server, how):
    """4.1.3 / 4.3.2: an id that is not in the archive (here: another user's) is an error."""
    a, b = new_users(server, "mna", "mnb")
    ca, cb = online(server, a), online(server, b)
    try:
        send_all(ca, b, ["x"])
        got = message_from(cb, "x")
        foreign = stanza_ids(got, b)[0].get("id")  # in b's archive, not a's
        _, own = archive(ca)
        kw = {
            "after-id": {"fields": [("after-id", foreign)]},
            "before-id": {"fields": [("before-id", "no-such-id")]},
            "ids": {"fields": [("ids", [own[0].id, foreign])]},
            "rsm-after": {"rsm": f"<max>5</max><after>{foreign}</after>"},
            "rsm-before": {"rsm": "<max>5</max><before>no-such-id</before>"},
        }[how]
        answer, results = mam_query(ca, **kw)
        assert results == []
        assert_error(answer, "item-not-found", how)
    finally:
        close_all(ca, cb)


@pytest.mark.parametrize("fields,rsm,condition", [
    ([("start", "yesterday")], "", "bad-request"),
    ([("end", "2020-01-01")], "", "bad-request"),
    ([("with", "a@@b")], "", "bad-request"),
    ([("include-groupchat", "true")], "", "feature-not-implemented"),
    ([("{urn:example}fulltext", "x")], "", "feature-not-implemented"),
    ((), "<max>many</max>", "bad-request"),
    ((), "<max>5</max><index>2</index>", "feature-not-implemented"),
], ids=["start", "end", "with", "unknown-field", "custom-field", "max", "index"])
def test_bad_queries(server, fields, rsm, condition):
    (user,) = new_users(server, "mbq")
    c = online(server, user)
    try:
        answer, results = mam_query(c, fields=fields, rsm=rsm)
        assert results == []
        assert_error(answer, condition)
    finally:
        c.close()


def test_another_users_archive_is_forbidden(server):
    """8.1: only the account reads and configures its archive."""
    a, b = new_users(server, "mfa", "mfb")
    ca, cb = online(server, a), online(server, b)
    try:
        send_all(cb, a, ["secret"])
        answer, results = mam_query(ca, to=b)
        assert results == []
        assert_error(answer, "forbidden", "query of another user's archive")
        assert_error(ca.iq("get", f"<query xmlns='{NS_MAM}'/>", to=b), "forbidden", "form")
        assert_error(prefs_iq(ca, "get", to=b), "forbidden", "prefs get")
        assert_error(prefs_iq(ca, "set", to=b, default="never"), "forbidden", "prefs set")
        assert_error(ca.iq("get", f"<metadata xmlns='{NS_MAM}'/>", to=b), "forbidden", "metadata")
        # and nothing changed for b
        _, results = archive(cb)
        assert bodies(results) == ["secret"]
        assert prefs_of(prefs_iq(cb, "get"))[0] == "always"
    finally:
        close_all(ca, cb)


def test_query_to_own_bare_jid_explicitly(server):
    a, b = new_users(server, "mja", "mjb")
    ca, cb = online(server, a), online(server, b)
    try:
        send_all(ca, b, ["hello"])
        f, results = archive(ca, to=a)
        assert bodies(results) == ["hello"] and f["count"] == 1
    finally:
        close_all(ca, cb)


def test_metadata(server):
    a, b = new_users(server, "mma", "mmb")
    ca, cb = online(server, a), online(server, b)
    try:
        answer = assert_result(ca.iq("get", f"<metadata xmlns='{NS_MAM}'/>"), "metadata")
        md = answer.find(q(NS_MAM, "metadata"))
        assert md is not None and len(md) == 0, f"an empty archive has empty metadata: {rc.show(answer)}"
        send_all(ca, b, ["m1", "m2", "m3"])
        _, results = archive(ca)
        answer = assert_result(ca.iq("get", f"<metadata xmlns='{NS_MAM}'/>"), "metadata")
        start = answer.find(f"{q(NS_MAM, 'metadata')}/{q(NS_MAM, 'start')}")
        end = answer.find(f"{q(NS_MAM, 'metadata')}/{q(NS_MAM, 'end')}")
        assert start is not None and end is not None, rc.show(answer)
        assert (start.get("id"), start.get("timestamp")) == (results[0].id, results[0].stamp)
        assert (end.get("id"), end.get("timestamp")) == (results[-1].id, results[-1].stamp)
    finally:
        close_all(ca, cb)


# ---------------------------------------------------------------- what is (not) archived

def test_hints_chat_states_and_types(server):
    """XEP-0334 no-store / no-permanent-store, messages without a body, headline and
    groupchat are not archived and get no stanza-id; <store/> archives a bodiless one."""
    a, b = new_users(server, "mha", "mhb")
    ca, cb = online(server, a), online(server, b)
    try:
        ca.message(cb.jid, "no-store", extra=f"<no-store xmlns='{NS_HINTS}'/>")
        ca.message(cb.jid, "no-permanent-store", extra=f"<no-permanent-store xmlns='{NS_HINTS}'/>")
        ca.message(cb.jid, "headline", type_="headline")
        ca.message(cb.jid, "kept", extra=f"<no-copy xmlns='{NS_HINTS}'/>")
        ca.send(f"<message to='{cb.jid}' type='chat' id='cs1'>"
                "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
        ca.send(f"<message to='{cb.jid}' type='chat' id='st1'><store xmlns='{NS_HINTS}'/>"
                "<custom xmlns='urn:example:payload'/></message>")
        ca.sync()
        for body in ("no-store", "no-permanent-store", "headline"):
            assert stanza_ids(message_from(cb, body)) == [], body
        assert len(stanza_ids(message_from(cb, "kept"))) == 1
        chat_state = take(cb, lambda e: e.get("id") == "cs1", what="the chat state")
        assert stanza_ids(chat_state) == []
        stored = take(cb, lambda e: e.get("id") == "st1", what="the <store/> message")
        assert len(stanza_ids(stored, b)) == 1
        for c in (ca, cb):
            f, results = archive(c)
            assert bodies(results) == ["kept", None], rc.show(results[-1].el) if results else "no results"
            assert results[1].message.get("id") == "st1"
    finally:
        close_all(ca, cb)


def test_note_to_self_is_archived_once(server):
    (a,) = new_users(server, "mse")
    c1 = online(server, a, "one")
    c2 = online(server, a, "two")
    try:
        c1.message(a, "remember the milk")
        got = message_from(c2, "remember the milk")
        assert len(stanza_ids(got, a)) == 1
        f, results = archive(c1)
        assert bodies(results) == ["remember the milk"] and f["count"] == 1
        assert results[0].id == stanza_ids(got, a)[0].get("id")
        _, results = archive(c1, fields=[("with", a)])
        assert bodies(results) == ["remember the milk"]
    finally:
        close_all(c1, c2)


def test_messages_to_a_full_jid_and_bare_jid(server):
    a, b = new_users(server, "mfj", "mfk")
    ca, cb = online(server, a), online(server, b, "res")
    try:
        ca.message(b, "to bare")
        ca.message(cb.jid, "to full")
        ca.message(f"{b}/gone", "to a missing resource")
        ca.sync()
        for body in ("to bare", "to full", "to a missing resource"):
            assert len(stanza_ids(message_from(cb, body), b)) == 1, body
        _, results = archive(cb)
        assert bodies(results) == ["to bare", "to full", "to a missing resource"]
    finally:
        close_all(ca, cb)


def test_blocked_sender_is_not_archived_for_the_recipient(server):
    """7.1: what the user's rules refuse is not in the user's archive."""
    a, b = new_users(server, "mka", "mkb")
    ca, cb = online(server, a), online(server, b)
    try:
        block(cb, a)
        id = ca.message(b, "let me in")
        el = error_for(ca, id)
        assert rc.stanza_error(el)[1] == "service-unavailable"
        f, results = archive(cb)
        assert results == [] and f["count"] == 0
    finally:
        close_all(ca, cb)


def test_offline_messages_carry_the_stanza_id(server):
    """A message for an offline user is archived when it arrives; the copy delivered from
    offline storage carries the same stanza-id."""
    a, b = new_users(server, "moa", "mob")
    ca = online(server, a)
    try:
        ca.message(b, "while you were out")
        ca.sync()
        cb = login(server, b)
        try:
            f, results = archive(cb)
            assert bodies(results) == ["while you were out"]
            cb.send_presence()
            got = message_from(cb, "while you were out")
            sids = stanza_ids(got, b)
            assert len(sids) == 1 and sids[0].get("id") == results[0].id, rc.show(got)
        finally:
            cb.close()
    finally:
        ca.close()


# ---------------------------------------------------------------- preferences

def test_default_preferences(server):
    (user,) = new_users(server, "mdp")
    c = online(server, user)
    try:
        assert prefs_of(prefs_iq(c, "get")) == ("always", [], [])
    finally:
        c.close()


def test_preferences_never_and_always(server):
    """never for one contact, always for another with default never; never wins over
    always; the delivered message has no stanza-id when it is not archived."""
    a, b, c = new_users(server, "mpn", "mpo", "mpp")
    ca, cb, cc = online(server, a), online(server, b), online(server, c)
    try:
        set_prefs(ca, "always", never=[c])
        send_all(cb, a, ["from b"])
        send_all(cc, a, ["from c"])
        assert stanza_ids(message_from(ca, "from c")) == []
        assert len(stanza_ids(message_from(ca, "from b"))) == 1
        send_all(ca, c, ["to c"])  # outgoing is not archived either
        assert bodies(archive(ca)[1]) == ["from b"]

        set_prefs(ca, "never", always=[b, c], never=[c])
        send_all(cb, a, ["b again"])
        send_all(cc, a, ["c again"])
        (d,) = new_users(server, "mpq")
        cd = online(server, d)
        send_all(cd, a, ["from d"])
        cd.close()
        assert bodies(archive(ca)[1]) == ["from b", "b again"]
        # the others keep their own default
        assert bodies(archive(cc)[1]) == ["from c", "to c", "c again"]
    finally:
        close_all(ca, cb, cc)


def test_preferences_roster(server):
    a, friend, stranger = new_users(server, "mra", "mrf", "mrs")
    befriend(server, a, friend)
    ca, cf, cs = online(server, a), online(server, friend), online(server, stranger)
    try:
        set_prefs(ca, "roster")
        send_all(cf, a, ["from friend"])
        send_all(cs, a, ["from stranger"])
        send_all(ca, stranger, ["to stranger"])
        send_all(ca, friend, ["to friend"])
        assert bodies(archive(ca)[1]) == ["from friend", "to friend"]
    finally:
        close_all(ca, cf, cs)


def test_preferences_persist(server):
    """Stored, not only cached: they survive the session and are in the database."""
    a, b = new_users(server, "mpe", "mpf")
    c = online(server, a)
    # a full JID stands for its bare JID; the answer holds what is now in force
    answer = prefs_iq(c, "set", jids_xml("always", [b, f"{b}/res"]) + jids_xml("never", ["spam.example"]),
                      default="roster")
    assert prefs_of(answer) == ("roster", [b], ["spam.example"])
    c.close()
    c = online(server, a)
    try:
        assert prefs_of(prefs_iq(c, "get")) == ("roster", [b], ["spam.example"])
        local = a.split("@")[0]
        row = harness.psql(server.dbname, f"SELECT default_mode FROM archive_prefs WHERE username = '{local}'")
        assert row.strip() == "roster"
    finally:
        c.close()


@pytest.mark.parametrize("inner,default", [
    ("", None),
    ("", "sometimes"),
    ("<always><jid>a@@b</jid></always>", "always"),
], ids=["no-default", "bad-default", "bad-jid"])
def test_bad_preferences(server, inner, default):
    (user,) = new_users(server, "mbp")
    c = online(server, user)
    try:
        assert_error(prefs_iq(c, "set", inner, default=default), "bad-request")
        assert prefs_of(prefs_iq(c, "get")) == ("always", [], [])
    finally:
        c.close()


# ---------------------------------------------------------------- a real client

def test_slixmpp_queries_the_archive(server):
    """slixmpp's xep_0313: a filtered query, the metadata, and paging with its iterator."""
    a, b = new_users(server, "msa", "msb")
    ca, cb = online(server, a), online(server, b)
    try:
        send_all(ca, b, [f"s{i}" for i in range(7)])
        send_all(cb, a, ["reply"])
    finally:
        close_all(ca, cb)

    async def scenario():
        s = sx.connect(b, server.users[b], server.port, "SCRAM-SHA-256", resource="slix")
        s.client.register_plugin("xep_0313")
        assert await s.started == "session"
        mam = s.client["xep_0313"]
        iq = await mam.retrieve(jid=sx.slixmpp.JID(b), with_jid=sx.slixmpp.JID(a), timeout=10)
        results = iq["mam"]["results"]
        got = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in results]
        assert got == [f"s{i}" for i in range(7)] + ["reply"]
        assert iq["mam_fin"].xml.get("complete") == "true"
        meta = await mam.get_archive_metadata(jid=sx.slixmpp.JID(b), timeout=10)
        assert meta["mam_metadata"]["start"]["id"] == results[0]["mam_result"]["id"]
        assert meta["mam_metadata"]["end"]["id"] == results[-1]["mam_result"]["id"]
        paged = []
        async for m in mam.iterate(jid=sx.slixmpp.JID(b), rsm={"max": 3}):
            paged.append(m["mam_result"]["forwarded"]["stanza"]["body"])
        assert paged == got
    sx.run(scenario, timeout=40)


# ---------------------------------------------------------------- configuration

def test_archiving_disabled(make_server):
    srv = make_server({"archive": {"enabled": False}})
    ca = online(srv, "alice@localhost")
    cb = online(srv, "bob@localhost")
    try:
        features = disco_features(ca, domain="alice@localhost")
        assert NS_MAM not in features and NS_MAM_EXTENDED not in features
        ca.message(cb.jid, "not archived")
        got = message_from(cb, "not archived")
        assert stanza_ids(got) == []
        answer, results = mam_query(ca)
        assert results == []
        assert_error(answer, "service-unavailable", "a query with archiving disabled")
    finally:
        close_all(ca, cb)


def test_default_never_from_configuration(make_server):
    srv = make_server({"archive": {"default": "never", "max_page": 5}})
    ca = online(srv, "alice@localhost")
    cb = online(srv, "bob@localhost")
    try:
        assert prefs_of(prefs_iq(ca, "get")) == ("never", [], [])
        send_all(ca, cb.jid, ["not kept"])
        assert stanza_ids(message_from(cb, "not kept")) == []
        assert archive(cb)[1] == []
        set_prefs(cb, "always")
        send_all(ca, cb.jid, [f"k{i}" for i in range(7)])
        # max_page caps the page whatever the client asks
        f, results = archive(cb, rsm="<max>100</max>")
        assert len(results) == 5 and not f["complete"] and f["count"] == 7
        f, results = archive(cb)
        assert len(results) == 5
    finally:
        close_all(ca, cb)


def test_large_pages_are_cut_to_fit_the_send_queue(make_server):
    """A page of large messages is cut (complete false) rather than overflow the
    requester's send queue (which would close its stream); paging on loses nothing."""
    srv = make_server({"limits": {"send_queue_bytes": 65536}})
    ca = online(srv, "alice@localhost")
    cb = online(srv, "bob@localhost")
    texts = [f"{i}" + "x" * 6000 for i in range(8)]
    try:
        send_all(ca, cb.jid, texts)
        seen, after, pages = [], None, 0
        while True:
            rsm = "<max>8</max>" + (f"<after>{after}</after>" if after else "")
            f, results = archive(cb, rsm=rsm)
            pages += 1
            assert 0 < len(results) < 8 and f["count"] == 8 and f["index"] == len(seen)
            seen += bodies(results)
            after = f["last"]
            if f["complete"]:
                break
            assert pages < 8
        assert seen == texts and pages > 1
        f, results = archive(cb, rsm="<max>8</max><before/>")
        assert 0 < len(results) < 8 and not f["complete"]
        assert bodies(results) == texts[-len(results):] and f["index"] == 8 - len(results)
        cb.sync()   # still connected
    finally:
        close_all(ca, cb)


def test_retention_removes_old_messages(make_server):
    """[archive] retention_days: messages older than that go at start and every hour;
    newer ones stay."""
    srv = make_server({"archive": {"retention_days": 1}}, start=False)
    stanza = "<message from=''bob@localhost/x'' to=''alice@localhost'' type=''chat''><body>{}</body></message>"
    harness.psql(srv.dbname, "INSERT INTO archive_messages (domain, username, id, with_jid, stamp, stanza) VALUES "
                 f"('localhost', 'alice', 'old1', 'bob@localhost', now() - interval '3 days', '{stanza.format('old 1')}'), "
                 f"('localhost', 'alice', 'old2', 'bob@localhost', now() - interval '2 days', '{stanza.format('old 2')}'), "
                 f"('localhost', 'alice', 'new1', 'bob@localhost', now() - interval '1 hour', '{stanza.format('recent')}')")
    srv.start()
    c = online(srv, "alice@localhost")
    try:
        srv.wait_log(r"archive retention: removed 2 message", timeout=10)
        f, results = archive(c)
        assert bodies(results) == ["recent"] and f["count"] == 1
        assert results[0].id == "new1"
    finally:
        c.close()
    assert harness.psql(srv.dbname, "SELECT count(*) FROM archive_messages").strip() == "1"
