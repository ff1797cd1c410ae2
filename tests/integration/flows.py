"""Conversation-level helpers shared by the test modules."""
import rawclient as rc
from rawclient import NS_CLIENT, q


def split(jid):
    local, domain = jid.split("@", 1)
    return local, domain


def login(server, jid, resource=None, mechanism="PLAIN", direct_tls=False, presence=False,
          password=None, **kw):
    """A bound raw session for one of server.users."""
    local, domain = split(jid)
    port = server.tls_port if direct_tls else server.port
    return rc.login(port, local, password if password is not None else server.users[jid],
                    domain=domain, resource=resource, mechanism=mechanism,
                    direct_tls=direct_tls, presence=presence, **kw)


def assert_server_works(server):
    """Two fresh clients log in and exchange a message both ways: run after every
    negative test to show the misbehaving client hurt nobody else."""
    a = login(server, "alice@localhost")
    b = login(server, "bob@localhost")
    try:
        a.message(b.jid, "still alive?")
        m = b.wait_message("still alive?")
        assert m.get("from") == a.jid, rc.show(m)
        b.message(a.jid, "yes")
        m = a.wait_message("yes")
        assert m.get("from") == b.jid, rc.show(m)
    finally:
        a.close()
        b.close()


def is_iq(el, id=None):
    return el.tag == q(NS_CLIENT, "iq") and (id is None or el.get("id") == id)


def is_message(el, body=None):
    return el.tag == q(NS_CLIENT, "message") and (
        body is None or el.findtext(q(NS_CLIENT, "body")) == body)


def is_presence(el):
    return el.tag == q(NS_CLIENT, "presence")


# ---------------------------------------------------------------- rosters and presence
# Helpers for the roster / subscription / presence tests (RFC 6121). The raw client keeps
# elements that a wait_for() did not want in .skipped; take() looks there first, so a
# stanza that arrived "too early" (a presence before the roster push we waited for) is
# not lost.
import itertools as _itertools
import os as _os
import time as _time
from xml.sax.saxutils import escape as _escape, quoteattr as _quoteattr

NS_ROSTER = "jabber:iq:roster"
NS_ROSTERVER = "urn:xmpp:features:rosterver"
NS_PREAPPROVAL = "urn:xmpp:features:pre-approval"
NS_DELAY = "urn:xmpp:delay"
NS_LAST = "jabber:iq:last"

_user_numbers = _itertools.count(1)


def new_user(server, hint="u", domain="localhost"):
    """A fresh account (so its roster starts empty), added to server.users."""
    jid = f"{hint}{_os.getpid() % 10000}n{next(_user_numbers)}@{domain}"
    password = f"{hint}-secret"
    server.add_user(jid, password)
    server.users[jid] = password
    return jid


def new_users(server, *hints, domain="localhost"):
    return [new_user(server, h, domain) for h in hints]


def bare(jid):
    return jid.split("/", 1)[0] if jid else jid


def online(server, jid, resource=None, roster=True, presence=True, payload="", **kw):
    """A session that is 'interested' (fetched the roster) and 'available' (sent initial
    presence, RFC 6121 2.2); the server has processed both when this returns."""
    c = login(server, jid, resource=resource, **kw)
    if roster:
        answer = roster_get(c)
        assert answer.get("type") == "result", f"roster get failed: {rc.show(answer)}"
    if presence:
        c.send_presence(payload)
    return c


# -- reading

def take(c, pred, timeout=None, what="a matching element"):
    """The first element satisfying pred, looking at already skipped elements first."""
    for i, el in enumerate(c.skipped):
        if pred(el):
            del c.skipped[i]
            return el
    return c.wait_for(pred, timeout, what=what)


def take_all(c, preds, timeout=None, what="the expected stanzas"):
    """Reads until every predicate has matched its own element (skipped ones first).
    Returns (matches in the order of preds, order) where order lists the indexes of preds
    in arrival order. Elements nobody wanted stay in c.skipped."""
    matches = [None] * len(preds)
    order = []
    pool = list(c.skipped)
    c.skipped.clear()

    def offer(el):
        for i, p in enumerate(preds):
            if matches[i] is None and p(el):
                matches[i] = el
                order.append(i)
                return True
        return False

    for el in pool:
        if not offer(el):
            c.skipped.append(el)
    deadline = _time.monotonic() + (c.timeout if timeout is None else timeout)
    while None in matches:
        remaining = deadline - _time.monotonic()
        missing = [i for i, m in enumerate(matches) if m is None]
        try:
            el = c.next(max(remaining, 0.001))
        except rc.Timeout:
            raise rc.Timeout(f"{what}: predicates {missing} unmatched; skipped: "
                             f"{[rc.show(e) for e in c.skipped]}\n{c.dump()}") from None
        if not offer(el):
            c.skipped.append(el)
    return matches, order


def collect(c, duration=0.7):
    """Everything already skipped plus everything arriving within duration, in order."""
    out = list(c.skipped)
    c.skipped.clear()
    deadline = _time.monotonic() + duration
    while True:
        remaining = deadline - _time.monotonic()
        if remaining <= 0:
            return out
        try:
            out.append(c.next(remaining))
        except rc.Timeout:
            return out
        except rc.StreamClosed:
            return out


def quiet(c, duration=0.7, ignore=lambda el: False, what=""):
    """Asserts that nothing (but ignored elements) is waiting or arrives within duration."""
    got = [el for el in collect(c, duration) if not ignore(el)]
    assert not got, (f"{c.jid} received {what or 'unexpected stanzas'}: "
                     + "\n  ".join(rc.show(e) for e in got))


# -- presence

def presence(c, to=None, type_=None, payload="", id=None):
    attrs = ""
    if to:
        attrs += f" to={_quoteattr(to)}"
    if type_:
        attrs += f" type={_quoteattr(type_)}"
    if id:
        attrs += f" id={_quoteattr(id)}"
    c.send(f"<presence{attrs}>{payload}</presence>" if payload else f"<presence{attrs}/>")


def is_pres(el, frm=None, type_=None, bare_from=False):
    """A presence stanza; frm compared exactly (or by bare JID with bare_from); type_
    'available' means no type attribute, None means any type."""
    if el.tag != q(NS_CLIENT, "presence"):
        return False
    if frm is not None:
        f = el.get("from")
        if (bare(f) if bare_from else f) != frm:
            return False
    if type_ is not None:
        t = el.get("type") or "available"
        if t != type_:
            return False
    return True


def pres_status(el):
    return el.findtext(q(NS_CLIENT, "status"))


def pres_show(el):
    return el.findtext(q(NS_CLIENT, "show"))


def wait_pres(c, frm, type_="available", timeout=None, bare_from=False, status=None,
              show=None):
    """The next presence of that type from frm (optionally with that status / show)."""
    def pred(e):
        return (is_pres(e, frm, type_, bare_from)
                and (status is None or pres_status(e) == status)
                and (show is None or pres_show(e) == show))
    extra = (f" status={status!r}" if status is not None else "") + (
        f" show={show!r}" if show is not None else "")
    return take(c, pred, timeout, what=f"presence type={type_} from {frm}{extra}")


def is_own_presence(c):
    """Predicate: presence from one of c's own account's resources (the server echoes a
    user's presence to all the user's available resources, RFC 6121 4.2.2)."""
    own = bare(c.jid)
    return lambda el: is_pres(el) and bare(el.get("from")) == own


# -- roster

def item_of(el):
    """A roster <item/> as a dict (defaults filled in as the RFC defines them)."""
    return {
        "jid": el.get("jid"),
        "name": el.get("name"),
        "subscription": el.get("subscription", "none"),
        "ask": el.get("ask"),
        "approved": el.get("approved") in ("true", "1"),
        "groups": sorted(g.text or "" for g in el.findall(q(NS_ROSTER, "group"))),
    }


def roster_query(iq):
    return iq.find(q(NS_ROSTER, "query"))


def roster_get(c, ver=None, to=None, id=None):
    """Sends a roster get, returns the answer iq."""
    v = "" if ver is None else f" ver={_quoteattr(ver)}"
    return c.iq("get", f"<query xmlns='{NS_ROSTER}'{v}/>", to=to, id=id)


def roster(c):
    """The roster as {jid: item} (asserts a result with a query)."""
    answer = roster_get(c)
    assert answer.get("type") == "result", f"roster get failed: {rc.show(answer)}"
    query = roster_query(answer)
    assert query is not None, f"roster result without <query/>: {rc.show(answer)}"
    return {i["jid"]: i for i in map(item_of, query.findall(q(NS_ROSTER, "item")))}


def item_xml(jid, name=None, groups=(), subscription=None, extra=""):
    attrs = f" jid={_quoteattr(jid)}"
    if name is not None:
        attrs += f" name={_quoteattr(name)}"
    if subscription is not None:
        attrs += f" subscription={_quoteattr(subscription)}"
    inner = "".join(f"<group>{_escape(g)}</group>" for g in groups)
    return f"<item{attrs}{extra}>{inner}</item>" if inner else f"<item{attrs}{extra}/>"


def roster_set(c, jid, name=None, groups=(), subscription=None, to=None, raw_items=None):
    """Sends a roster set (one item, or raw_items verbatim), returns the answer iq."""
    items = raw_items if raw_items is not None else item_xml(jid, name, groups, subscription)
    return c.iq("set", f"<query xmlns='{NS_ROSTER}'>{items}</query>", to=to)


def roster_remove(c, jid):
    return roster_set(c, jid, subscription="remove")


def is_roster_push(el, jid=None):
    if el.tag != q(NS_CLIENT, "iq") or el.get("type") != "set":
        return False
    query = roster_query(el)
    if query is None:
        return False
    if jid is None:
        return True
    return any(i.get("jid") == jid for i in query.findall(q(NS_ROSTER, "item")))


def check_push(c, el):
    """RFC 6121 2.1.6: one item, from nobody or the user's bare JID, to the resource.
    Acknowledges it as clients are supposed to, returns the item dict plus 'ver'."""
    assert el.get("from") in (None, bare(c.jid)), f"roster push from elsewhere: {rc.show(el)}"
    assert el.get("to") in (None, c.jid), f"roster push to {el.get('to')}: {rc.show(el)}"
    items = roster_query(el).findall(q(NS_ROSTER, "item"))
    assert len(items) == 1, f"a roster push has exactly one item (RFC 6121 2.1.6): {rc.show(el)}"
    if el.get("id"):
        c.send(f"<iq type='result' id={_quoteattr(el.get('id'))}/>")
    item = item_of(items[0])
    item["ver"] = roster_query(el).get("ver")
    return item


def wait_push(c, jid, timeout=None):
    """The next roster push for jid (item dict plus 'ver')."""
    el = take(c, lambda e: is_roster_push(e, jid), timeout, what=f"a roster push for {jid}")
    return check_push(c, el)


def no_push(el):
    return not is_roster_push(el)


def subscribe_flow(a, b, approve=True):
    """a (a raw session of the user) subscribes to b's account (b a raw session of the
    contact); b approves. Consumes the pushes and the subscription stanzas on both sides
    (presence notifications stay in .skipped / pending). Returns nothing."""
    b_bare, a_bare = bare(b.jid), bare(a.jid)
    presence(a, b_bare, "subscribe")
    wait_push(a, b_bare)
    take(b, lambda e: is_pres(e, a_bare, "subscribe"), what=f"subscribe from {a_bare}")
    if approve:
        presence(b, a_bare, "subscribed")
        wait_push(b, a_bare)
        take(a, lambda e: is_pres(e, b_bare, "subscribed"), what=f"subscribed from {b_bare}")
        wait_push(a, b_bare)


def befriend(server, user, contact, mutual=True):
    """Sets up a subscription of user to contact (and back when mutual) through the
    protocol, with sessions that end before the test proper starts."""
    a = online(server, user, resource="setup")
    b = online(server, contact, resource="setup")
    try:
        subscribe_flow(a, b)
        if mutual:
            subscribe_flow(b, a)
        a.sync()
        b.sync()
    finally:
        a.close()
        b.close()
    # the sessions' unavailable presence must not reach the test proper
    _time.sleep(0.3)


# ---------------------------------------------------------------- access rules
# Helpers for privacy lists (XEP-0016), the blocking command (XEP-0191) and invisibility
# (XEP-0186), shared by test_privacy.py, test_blocking.py and test_invisible.py.
NS_PRIVACY = "jabber:iq:privacy"
NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_INVISIBLE = "urn:xmpp:invisible:1"
NS_INVISIBLE0 = "urn:xmpp:invisible:0"
PRIVACY_KINDS = ("message", "iq", "presence-in", "presence-out")
# an IQ payload no client library answers by itself
UNKNOWN_PAYLOAD = "<query xmlns='urn:herald:test:nobody-handles-this'/>"


def privacy_item(action, order, type_=None, value=None, kinds=()):
    """One <item/> of a privacy list; kinds: names from PRIVACY_KINDS (none: everything)."""
    attrs = ""
    if type_ is not None:
        attrs += f" type={_quoteattr(type_)}"
    if value is not None:
        attrs += f" value={_quoteattr(value)}"
    if action is not None:
        attrs += f" action={_quoteattr(action)}"
    if order is not None:
        attrs += f" order={_quoteattr(str(order))}"
    inner = "".join(f"<{k}/>" for k in kinds)
    return f"<item{attrs}>{inner}</item>" if inner else f"<item{attrs}/>"


def deny_jid(jid, order=1, kinds=()):
    return privacy_item("deny", order, "jid", jid, kinds)


def privacy_iq(c, type_, inner="", id=None):
    """An IQ in jabber:iq:privacy to the user's own account; returns the answer."""
    return c.iq(type_, f"<query xmlns='{NS_PRIVACY}'>{inner}</query>", id=id)


def privacy_set_list(c, name, items):
    """Creates or replaces list `name` with `items` (XML strings); [] removes it."""
    body = "".join(items)
    inner = (f"<list name={_quoteattr(name)}>{body}</list>" if body
             else f"<list name={_quoteattr(name)}/>")
    return privacy_iq(c, "set", inner)


def privacy_get(c, *names):
    """No names: the list of lists; otherwise a get of these lists."""
    return privacy_iq(c, "get", "".join(f"<list name={_quoteattr(n)}/>" for n in names))


def privacy_active(c, name=None):
    return privacy_iq(c, "set", "<active/>" if name is None else f"<active name={_quoteattr(name)}/>")


def privacy_default(c, name=None):
    return privacy_iq(c, "set", "<default/>" if name is None else f"<default name={_quoteattr(name)}/>")


def assert_result(answer, what="the request"):
    assert answer.get("type") == "result", f"{what} failed: {rc.show(answer)}"
    return answer


def assert_error(answer, condition, what="the request"):
    """The answer is an error with that condition; returns its type."""
    assert answer.get("type") == "error", f"{what}: expected <{condition}/>, got {rc.show(answer)}"
    err = rc.stanza_error(answer)
    assert err is not None and err[1] == condition, (
        f"{what}: expected <{condition}/>, got {rc.show(answer)}")
    return err[0]


def privacy_names(c):
    """The answer to a get of the list names: (active or None, default or None, [names])."""
    answer = assert_result(privacy_get(c), "privacy list names")
    query = answer.find(q(NS_PRIVACY, "query"))
    assert query is not None, f"no <query/>: {rc.show(answer)}"
    active = query.find(q(NS_PRIVACY, "active"))
    default = query.find(q(NS_PRIVACY, "default"))
    names = [el.get("name") for el in query.findall(q(NS_PRIVACY, "list"))]
    return (None if active is None else active.get("name"),
            None if default is None else default.get("name"), names)


def privacy_items(c, name):
    """The items of list `name` as dicts (type, value, action, order, kinds)."""
    answer = assert_result(privacy_get(c, name), f"get of privacy list {name!r}")
    lists = answer.findall(f"{q(NS_PRIVACY, 'query')}/{q(NS_PRIVACY, 'list')}")
    assert len(lists) == 1 and lists[0].get("name") == name, rc.show(answer)
    items = []
    for el in lists[0].findall(q(NS_PRIVACY, "item")):
        items.append({
            "type": el.get("type"), "value": el.get("value"), "action": el.get("action"),
            "order": el.get("order"),
            "kinds": sorted(ch.tag.split("}", 1)[1] for ch in el),
        })
    return items


def is_privacy_push(el, name=None):
    if el.tag != q(NS_CLIENT, "iq") or el.get("type") != "set":
        return False
    query = el.find(q(NS_PRIVACY, "query"))
    if query is None:
        return False
    lists = query.findall(q(NS_PRIVACY, "list"))
    return name is None or any(ls.get("name") == name for ls in lists)


def _ack(c, el):
    if el.get("id"):
        c.send(f"<iq type='result' id={_quoteattr(el.get('id'))}/>")


def take_privacy_push(c, name, timeout=None):
    """The privacy list push for `name` at c (checked: exactly one empty <list/>, addressed
    to c or unaddressed, from nobody or the bare JID); acknowledged."""
    el = take(c, lambda e: is_privacy_push(e, name), timeout,
              what=f"a privacy list push for {name!r}")
    children = list(el.find(q(NS_PRIVACY, "query")))
    assert len(children) == 1 and children[0].tag == q(NS_PRIVACY, "list"), (
        f"a push holds exactly one <list/> (XEP-0016 2.2 rule 10): {rc.show(el)}")
    assert len(children[0]) == 0, f"a push names the list only: {rc.show(el)}"
    assert el.get("to") in (None, c.jid), f"push to {el.get('to')}: {rc.show(el)}"
    assert el.get("from") in (None, bare(c.jid)), f"push from elsewhere: {rc.show(el)}"
    _ack(c, el)
    return el


def use_list(c, name, items, others=(), active=True, default=False):
    """Sets list `name` from session c (taking the push at c and at the user's other
    sessions `others`), then makes it c's active list and/or the default list."""
    assert_result(privacy_set_list(c, name, items), f"set of privacy list {name!r}")
    for s in (c, *others):
        take_privacy_push(s, name)
    if active:
        assert_result(privacy_active(c, name), f"activation of {name!r}")
    if default:
        assert_result(privacy_default(c, name), f"default {name!r}")


def block_iq(c, verb, jids, id=None):
    """<block/> or <unblock/> with these JIDs (none: the empty element); the answer."""
    items = "".join(f"<item jid={_quoteattr(j)}/>" for j in jids)
    inner = f"<{verb} xmlns='{NS_BLOCKING}'>{items}</{verb}>" if items else f"<{verb} xmlns='{NS_BLOCKING}'/>"
    return c.iq("set", inner, id=id)


def block(c, *jids, others=()):
    """Blocks jids (asserting the result) and takes the block push at c and others."""
    assert_result(block_iq(c, "block", jids), f"block {jids}")
    for s in (c, *others):
        take_block_push(s, "block", jids)


def unblock(c, *jids, others=()):
    """Unblocks jids (none: all) and takes the unblock push at c and others."""
    assert_result(block_iq(c, "unblock", jids), f"unblock {jids}")
    for s in (c, *others):
        take_block_push(s, "unblock", jids)


def blocklist(c):
    """The blocked JIDs (a list, in the server's order)."""
    answer = assert_result(c.iq("get", f"<blocklist xmlns='{NS_BLOCKING}'/>"), "blocklist get")
    bl = answer.find(q(NS_BLOCKING, "blocklist"))
    assert bl is not None, f"no <blocklist/> in the result: {rc.show(answer)}"
    return [i.get("jid") for i in bl.findall(q(NS_BLOCKING, "item"))]


def is_block_push(el, verb=None, jids=None):
    """An IQ-set <block/> or <unblock/> (verb None: either) with exactly these item JIDs
    (jids None: any; () for an empty <unblock/>)."""
    if el.tag != q(NS_CLIENT, "iq") or el.get("type") != "set":
        return False
    for v in (("block", "unblock") if verb is None else (verb,)):
        payload = el.find(q(NS_BLOCKING, v))
        if payload is None:
            continue
        if jids is None:
            return True
        got = sorted(i.get("jid") for i in payload.findall(q(NS_BLOCKING, "item")))
        return got == sorted(jids)
    return False


def take_block_push(c, verb, jids, timeout=None):
    el = take(c, lambda e: is_block_push(e, verb, jids), timeout,
              what=f"a <{verb}/> push with {sorted(jids)}")
    assert el.get("to") in (None, c.jid), f"push to {el.get('to')}: {rc.show(el)}"
    assert el.get("from") in (None, bare(c.jid)), f"push from elsewhere: {rc.show(el)}"
    _ack(c, el)
    return el


def error_for(c, id, timeout=None):
    """The error reply with that id (looking at skipped elements first)."""
    return take(c, lambda e: e.get("id") == id and e.get("type") == "error", timeout,
                what=f"an error reply to {id}")


def blocked_error(el):
    """The <blocked xmlns='urn:xmpp:blocking:errors'/> of an error stanza, or None."""
    err = el.find(q(NS_CLIENT, "error"))
    return None if err is None else err.find(q(NS_BLOCKING_ERRORS, "blocked"))


def send_iq(c, type_, to, payload=UNKNOWN_PAYLOAD, id=None):
    """Sends an IQ without waiting for the answer; returns its id."""
    id = id or rc.new_id("iq")
    c.send(f"<iq type='{type_}' id='{id}' to={_quoteattr(to)}>{payload}</iq>")
    return id


def invisible(c, probe=None, ns=NS_INVISIBLE):
    p = "" if probe is None else f" probe='{'true' if probe else 'false'}'"
    return c.iq("set", f"<invisible xmlns='{ns}'{p}/>")


def visible(c, ns=NS_INVISIBLE):
    return c.iq("set", f"<visible xmlns='{ns}'/>")


def disco_features(c, domain="localhost"):
    answer = assert_result(c.iq("get", f"<query xmlns='{rc.NS_DISCO_INFO}'/>", to=domain),
                           "disco#info")
    return {f.get("var") for f in answer.iter(q(rc.NS_DISCO_INFO, "feature"))}


def is_offline_presence(el):
    """The answer to a probe of an offline account (RFC 6121 4.3.2 rule 3): unavailable
    presence from the bare JID with a XEP-0203 delay. A contact that logged in while the
    user was offline has it queued; checks for "nothing from the user" ignore it."""
    return (is_pres(el, type_="unavailable") and "/" not in (el.get("from") or "/")
            and el.find(q(NS_DELAY, "delay")) is not None)


# ---------------------------------------------------------------- messages
# Shared by test_offline.py, test_carbons.py and test_csi.py.
NS_HINTS = "urn:xmpp:hints"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


def send_message(c, to, inner="", type_="chat", id=None):
    """Sends a message with exactly this payload (type_ None: no type attribute)."""
    id = id or rc.new_id("m")
    t = "" if type_ is None else f" type={_quoteattr(type_)}"
    c.send(f"<message to={_quoteattr(to)} id={_quoteattr(id)}{t}>{inner}</message>")
    return id


def body_of(el):
    return el.findtext(q(NS_CLIENT, "body"))


def read_messages(c, n, timeout=None, what="messages"):
    """The next n <message/> stanzas in arrival order (skipped ones first); anything
    else read meanwhile stays in c.skipped."""
    out = [el for el in c.skipped if is_message(el)]
    c.skipped[:] = [el for el in c.skipped if not is_message(el)]
    deadline = _time.monotonic() + (c.timeout if timeout is None else timeout)
    while len(out) < n:
        try:
            el = c.next(max(deadline - _time.monotonic(), 0.001))
        except rc.Timeout:
            raise rc.Timeout(f"{what}: {len(out)} of {n} arrived: "
                             f"{[rc.show(e) for e in out]}\n{c.dump()}") from None
        if is_message(el):
            out.append(el)
        else:
            c.skipped.append(el)
    c.skipped[0:0] = out[n:]
    return out[:n]


def parse_stamp(stamp):
    """XEP-0082 DateTime -> aware datetime (fractions of a second dropped)."""
    import datetime
    s = stamp.replace("Z", "+00:00")
    if "." in s:
        head, tail = s.split(".", 1)
        i = min([k for k in (tail.find("+"), tail.find("-")) if k >= 0], default=len(tail))
        s = head + tail[i:]
    return datetime.datetime.fromisoformat(s)
