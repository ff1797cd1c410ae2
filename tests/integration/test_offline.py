"""Offline messages (XEP-0160, RFC 6121 8.5.2.2.1): chat and normal messages to an
account without an available non-negative resource are stored and delivered, oldest
first and with a XEP-0203 <delay/> from the server, when the user next sends
non-negative available presence; exactly once, across a restart. Headlines, chat-state
notifications and <no-store/> messages are not kept (silently); groupchat bounces
<service-unavailable/>, errors vanish, a <store/> hint keeps a body-less message, a full
store bounces <resource-constraint/> and a database that is gone bounces
<internal-server-error/>: the sender always learns that a message was not kept.

The module's server keeps at most 3 messages per user ([offline] max_messages = 3); every
test uses fresh accounts (flows.new_user). "Not stored" is shown with a marker: a chat
message sent after the one under test is stored, and the recipient's first offline
message must be the marker."""
import datetime


import harness
import rawclient as rc
from flows import (NS_CHATSTATES, NS_DELAY, NS_HINTS, bare, body_of,
                   collect, disco_features, error_for, is_message, login, new_users, online,
                   parse_stamp, quiet, read_messages, send_message)
from rawclient import q

MAX = 3
HERALD_CONFIG = {"offline": {"max_messages": MAX}}
WINDOW = 0.7


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def no_messages(c, duration=WINDOW, what="offline messages"):
    quiet(c, duration, ignore=lambda e: not is_message(e), what=what)


def assert_no_reply(sender, what="an error for a message that is dropped silently"):
    """The server processed everything the sender sent, and answered none of it."""
    sender.sync()
    quiet(sender, 0.4, what=what)


def assert_bounce(sender, id, addressee, condition, type_="cancel"):
    el = error_for(sender, id)
    err = rc.stanza_error(el)
    assert err is not None and err[1] == condition, f"expected <{condition}/>: {rc.show(el)}"
    if type_ is not None:
        assert err[0] == type_, f"expected error type {type_}: {rc.show(el)}"
    assert el.get("from") == addressee, f"error from {el.get('from')}: {rc.show(el)}"
    return el


def check_delay(el, t0, t1):
    """XEP-0203: one <delay/> from the server's domain, stamped (UTC) while stored."""
    delays = el.findall(q(NS_DELAY, "delay"))
    assert len(delays) == 1, f"expected one <delay xmlns='{NS_DELAY}'/>: {rc.show(el)}"
    d = delays[0]
    assert d.get("from") == "localhost", f"delay from {d.get('from')!r}: {rc.show(el)}"
    stamp = parse_stamp(d.get("stamp") or "")
    assert stamp.utcoffset() == datetime.timedelta(0), f"stamp not in UTC: {rc.show(el)}"
    assert t0.replace(microsecond=0) <= stamp <= t1 + datetime.timedelta(seconds=1), (
        f"stamp {stamp} outside the time the message was stored ({t0} .. {t1})")


def marker_first(server, recipient, sender, **kw):
    """Sends a marker (stored), logs the recipient in with initial presence and asserts
    that the marker is its first and only offline message."""
    sender.message(recipient, "marker")
    sender.sync()
    r = online(server, recipient, roster=False, **kw)
    try:
        (first,) = read_messages(r, 1, what="the marker")
        assert body_of(first) == "marker", (
            f"a message that must not be stored was delivered offline: {rc.show(first)}")
        no_messages(r, 0.4, what="offline messages after the marker")
    finally:
        r.close()


# ---------------------------------------------------------------- discovery

def test_disco_advertises_msgoffline(server):
    """XEP-0160 section 4: the server's disco#info lists the 'msgoffline' feature."""
    (user,) = new_users(server, "odi")
    c = login(server, user)
    try:
        assert "msgoffline" in disco_features(c)
    finally:
        c.close()


# ---------------------------------------------------------------- storage and delivery

def test_stored_and_delivered_in_order_with_delay(server):
    """Chat to the bare JID, a normal message without a type and a chat message to a
    resource that is not online (treated as to the bare JID, RFC 6121 8.5.3.2.1) are all
    stored and arrive after initial presence in the order sent, unchanged (sender's full
    JID, id, type, body) plus a <delay from='localhost'/> stamped when they were stored."""
    recipient, sender = new_users(server, "oord", "oords")
    s = login(server, sender)
    try:
        t0 = now()
        id1 = s.message(recipient, "one")
        id2 = send_message(s, recipient, "<body>two</body><subject>re</subject>", type_=None)
        id3 = s.message(f"{recipient}/gone", "three")
        assert_no_reply(s, "an answer to messages that were stored")
        t1 = now()
        r = online(server, recipient, roster=False)
        try:
            got = read_messages(r, 3, what="the three offline messages")
            assert [body_of(m) for m in got] == ["one", "two", "three"], [rc.show(m) for m in got]
            assert [m.get("id") for m in got] == [id1, id2, id3]
            assert [m.get("type") or "normal" for m in got] == ["chat", "normal", "chat"], (
                [rc.show(m) for m in got])
            assert got[1].findtext(q(rc.NS_CLIENT, "subject")) == "re", rc.show(got[1])
            for m in got:
                assert m.get("from") == s.jid, f"from {m.get('from')}: {rc.show(m)}"
                assert bare(m.get("to")) == recipient, rc.show(m)
                check_delay(m, t0, t1)
            no_messages(r, 0.4, what="more than the three stored messages")
        finally:
            r.close()
    finally:
        s.close()


def test_not_delivered_before_initial_presence(server):
    """A bound resource that has not sent initial presence is not available (RFC 6121
    4.2.1): stored messages stay stored, and a new message is stored too instead of
    being delivered; both arrive, in order, right after initial presence."""
    recipient, sender = new_users(server, "obnd", "obnds")
    s = login(server, sender)
    r = login(server, recipient)
    try:
        s.message(recipient, "while offline")
        s.sync()
        r2 = login(server, recipient, resource="second")
        try:
            s.message(recipient, "while bound")
            assert_no_reply(s, "an answer to messages that were stored")
            for c in (r, r2):
                no_messages(c, WINDOW, what="messages before initial presence")
        finally:
            r2.close()
        r.send_presence()
        got = read_messages(r, 2, what="the stored messages after initial presence")
        assert [body_of(m) for m in got] == ["while offline", "while bound"], (
            [rc.show(m) for m in got])
    finally:
        s.close()
        r.close()


def test_negative_priority_initial_presence_defers_delivery(server):
    """XEP-0160 section 2 / RFC 6121 8.5.2.1.1: a resource whose initial presence has a
    negative priority gets no offline messages; when it later sends presence with a
    priority >= 0 ("next sends non-negative available presence") they are delivered."""
    recipient, sender = new_users(server, "oneg", "onegs")
    s = login(server, sender)
    r = login(server, recipient)
    try:
        s.message(recipient, "held for you")
        s.sync()
        r.send_presence("<priority>-1</priority>")
        no_messages(r, WINDOW, what="offline messages at a negative priority")
        r.send_presence("<priority>0</priority>")
        (m,) = read_messages(r, 1, timeout=3,
                             what="the offline message once the priority is non-negative")
        assert body_of(m) == "held for you", rc.show(m)
    finally:
        s.close()
        r.close()


def test_stored_while_only_a_negative_priority_resource_is_online(server):
    """RFC 6121 8.5.2.1.1: a message to the bare JID of an account whose only available
    resource has a negative priority is not delivered to it but treated as offline:
    stored (no error), and delivered to the next resource with non-negative presence."""
    recipient, sender = new_users(server, "onon", "onons")
    s = login(server, sender)
    neg = online(server, recipient, resource="neg", roster=False, payload="<priority>-5</priority>")
    try:
        s.message(recipient, "for a non-negative resource")
        assert_no_reply(s, "an answer to a message that was stored")
        no_messages(neg, WINDOW, what="a bare-JID message at a negative priority")
        r = online(server, recipient, resource="pos", roster=False)
        try:
            (m,) = read_messages(r, 1, what="the stored message")
            assert body_of(m) == "for a non-negative resource", rc.show(m)
        finally:
            r.close()
        no_messages(neg, 0.3, what="the stored message at the negative resource")
    finally:
        s.close()
        neg.close()


def test_delivered_exactly_once(server):
    """Stored messages are removed once delivered: the next login gets none of them."""
    recipient, sender = new_users(server, "oonce", "oonces")
    s = login(server, sender)
    try:
        s.message(recipient, "only once")
        s.sync()
        r = online(server, recipient, roster=False)
        try:
            (m,) = read_messages(r, 1)
            assert body_of(m) == "only once", rc.show(m)
        finally:
            r.close()
        marker_first(server, recipient, s)
    finally:
        s.close()


def test_only_the_first_resource_gets_them(server):
    """Two bound resources: the one that sends initial presence first gets the stored
    messages; the other one, available later, gets none of them."""
    recipient, sender = new_users(server, "otwo", "otwos")
    s = login(server, sender)
    r1 = login(server, recipient, resource="first")
    r2 = login(server, recipient, resource="second")
    try:
        s.message(recipient, "a")
        s.message(recipient, "b")
        s.sync()
        r1.send_presence()
        got = read_messages(r1, 2)
        assert [body_of(m) for m in got] == ["a", "b"], [rc.show(m) for m in got]
        r2.send_presence()
        no_messages(r2, WINDOW, what="offline messages already delivered to another resource")
        no_messages(r1, 0.1, what="the offline messages a second time")
    finally:
        for c in (s, r1, r2):
            c.close()


def test_concurrent_initial_presence_delivers_once(server):
    """Two resources send initial presence at the same moment (they live on different
    workers): each stored message is delivered once in all, not once per resource.
    Repeated a few times, since it is about a race."""
    for round_ in range(4):
        recipient, sender = new_users(server, "ocon", "ocons")
        s = login(server, sender)
        r1 = login(server, recipient, resource="one")
        r2 = login(server, recipient, resource="two")
        try:
            for n in range(MAX):
                s.message(recipient, f"m{n}")
            assert_no_reply(s, "an answer to messages that were stored")
            r1.send("<presence/>")
            r2.send("<presence/>")
            got = [(c.jid, body_of(e)) for c in (r1, r2) for e in collect(c, 0.8)
                   if is_message(e)]
            bodies = sorted(b for _, b in got)
            assert bodies == [f"m{n}" for n in range(MAX)], (
                f"round {round_}: stored messages delivered {len(got)} times in all: {got}")
        finally:
            for c in (s, r1, r2):
                c.close()


# ---------------------------------------------------------------- what is not stored

def test_headline_not_stored_and_not_answered(server):
    """XEP-0160 section 3 / RFC 6121 8.5.2.2.1: a headline to an offline user is
    dropped: not stored, and no error to the sender."""
    recipient, sender = new_users(server, "ohl", "ohls")
    s = login(server, sender)
    try:
        send_message(s, recipient, "<body>news</body>", type_="headline")
        assert_no_reply(s, "an error for a headline")
        marker_first(server, recipient, s)
    finally:
        s.close()


def test_groupchat_bounced(server):
    """RFC 6121 8.5.2.2.1: groupchat to an offline user bounces <service-unavailable/>
    (type cancel, from the addressed bare JID) and is not stored."""
    recipient, sender = new_users(server, "ogc", "ogcs")
    s = login(server, sender)
    try:
        id = send_message(s, recipient, "<body>room talk</body>", type_="groupchat")
        assert_bounce(s, id, recipient, "service-unavailable")
        marker_first(server, recipient, s)
    finally:
        s.close()


def test_error_message_dropped_silently(server):
    """XEP-0160 section 3, RFC 6120 8.3.1: a message of type error to an offline user is
    neither stored nor answered (an error is never answered with an error)."""
    recipient, sender = new_users(server, "oerr", "oerrs")
    s = login(server, sender)
    try:
        send_message(s, recipient, "<body>failed</body><error type='cancel'>"
                     f"<item-not-found xmlns='{rc.NS_STANZA_ERR}'/></error>", type_="error")
        assert_no_reply(s, "an answer to an error message")
        marker_first(server, recipient, s)
    finally:
        s.close()


def test_chat_state_only_not_stored(server):
    """XEP-0160 section 3 (XEP-0085 5.5): a chat message with only a chat state is not
    stored, and not answered with an error either."""
    recipient, sender = new_users(server, "ocs", "ocss")
    s = login(server, sender)
    try:
        send_message(s, recipient, f"<composing xmlns='{NS_CHATSTATES}'/>")
        send_message(s, recipient, f"<active xmlns='{NS_CHATSTATES}'/><thread>t1</thread>")
        assert_no_reply(s, "an error for a chat state")
        marker_first(server, recipient, s)
    finally:
        s.close()


def test_no_store_hint(server):
    """XEP-0334 4.2: a message with a body and <no-store/> is not stored offline (and,
    like a headline, dropped without an error)."""
    recipient, sender = new_users(server, "onos", "onoss")
    s = login(server, sender)
    try:
        send_message(s, recipient, f"<body>ephemeral</body><no-store xmlns='{NS_HINTS}'/>")
        assert_no_reply(s, "an error for a no-store message")
        marker_first(server, recipient, s)
    finally:
        s.close()


def test_store_hint_keeps_a_bodyless_message(server):
    """XEP-0334 4.4: <store/> makes the server keep a message it would otherwise drop
    (here: no body, a payload the server knows nothing about); it is delivered with its
    payload and a <delay/>."""
    recipient, sender = new_users(server, "osto", "ostos")
    s = login(server, sender)
    try:
        t0 = now()
        id = send_message(s, recipient, f"<x xmlns='urn:herald:test:payload'>v</x>"
                          f"<store xmlns='{NS_HINTS}'/>")
        assert_no_reply(s, "an answer to a stored message")
        t1 = now()
        r = online(server, recipient, roster=False)
        try:
            (m,) = read_messages(r, 1, what="the body-less message kept by <store/>")
            assert m.get("id") == id, rc.show(m)
            assert m.find(q("urn:herald:test:payload", "x")) is not None, rc.show(m)
            assert body_of(m) is None, rc.show(m)
            check_delay(m, t0, t1)
        finally:
            r.close()
    finally:
        s.close()


def test_nonexistent_user_bounced(server):
    """RFC 6121 8.5.2.2.2 / 8.5.3.2.2: a message to an account that does not exist
    bounces <service-unavailable/> (cancel), to the bare and to a full JID alike."""
    (sender,) = new_users(server, "onx")
    s = login(server, sender)
    try:
        nobody = "nobody-offline-test@localhost"
        id = s.message(nobody, "hello?")
        assert_bounce(s, id, nobody, "service-unavailable")
        id = send_message(s, f"{nobody}/res", "<body>hello?</body>", type_=None)
        assert_bounce(s, id, f"{nobody}/res", "service-unavailable")
    finally:
        s.close()


def test_full_store_bounces_resource_constraint(server):
    """With [offline] max_messages = 3 the 4th message bounces <resource-constraint/>
    type 'wait' (from the recipient's bare JID); the first 3 are delivered, in order, and
    once delivered the store takes messages again. Other users are not affected."""
    recipient, other, sender = new_users(server, "olim", "olimo", "olims")
    s = login(server, sender)
    try:
        for n in range(MAX):
            s.message(recipient, f"m{n}")
        id = s.message(recipient, "one too many")
        assert_bounce(s, id, recipient, "resource-constraint", type_="wait")
        s.message(other, "someone else's store")
        assert_no_reply(s, "an error for a message to another user")
        r = online(server, recipient, roster=False)
        try:
            got = read_messages(r, MAX)
            assert [body_of(m) for m in got] == [f"m{n}" for n in range(MAX)], (
                [rc.show(m) for m in got])
            no_messages(r, 0.4, what="the bounced message")
        finally:
            r.close()
        s.message(recipient, "room again")
        assert_no_reply(s, "an error once the store was emptied")
        o = online(server, other, roster=False)
        try:
            (m,) = read_messages(o, 1)
            assert body_of(m) == "someone else's store", rc.show(m)
        finally:
            o.close()
    finally:
        s.close()


# ---------------------------------------------------------------- durability

def test_survives_a_restart(make_server):
    """The store is in PostgreSQL: messages stored before herald stops are delivered
    after it starts again."""
    srv = make_server(users=None)
    recipient, sender = new_users(srv, "orst", "orsts")
    s = login(srv, sender)
    try:
        s.message(recipient, "before the restart 1")
        s.message(recipient, "before the restart 2")
        s.sync()
    finally:
        s.close()
    assert srv.stop() == 0, srv.log_text()[-3000:]
    srv.start()
    r = online(srv, recipient, roster=False)
    try:
        got = read_messages(r, 2, what="messages stored before the restart")
        assert [body_of(m) for m in got] == ["before the restart 1", "before the restart 2"]
    finally:
        r.close()


def cut_database(dbname):
    harness.psql("postgres", f"ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS false")
    harness.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             f"WHERE datname = '{dbname}'")


def restore_database(dbname):
    harness.psql("postgres", f"ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS true")


def test_database_failure_bounces_internal_server_error(make_server):
    """With PostgreSQL unreachable a message that would be stored bounces
    <internal-server-error/> (never lost silently): to an account with no session (its
    existence cannot be checked) and to one with a bound but unavailable resource (the
    offline store itself fails). Once the database is back, messages are stored again and
    none of the bounced ones was kept."""
    srv = make_server(users=None)
    away, bound, sender = new_users(srv, "odba", "odbb", "odbs")
    s = login(srv, sender)
    b = login(srv, bound)
    try:
        cut_database(srv.dbname)
        try:
            id = s.message(away, "to nobody online")
            assert_bounce(s, id, away, "internal-server-error", type_=None)
            id = s.message(bound, "to a bound resource")
            assert_bounce(s, id, bound, "internal-server-error", type_=None)
        finally:
            restore_database(srv.dbname)
        s.message(away, "after the outage")
        s.message(bound, "after the outage")
        assert_no_reply(s, "an error once the database is back")
        b.send_presence()
        (m,) = read_messages(b, 1)
        assert body_of(m) == "after the outage", f"a bounced message was kept: {rc.show(m)}"
        no_messages(b, 0.3)
    finally:
        s.close()
        b.close()
    r = online(srv, away, roster=False)
    try:
        (m,) = read_messages(r, 1)
        assert body_of(m) == "after the outage", f"a bounced message was kept: {rc.show(m)}"
        no_messages(r, 0.3)
    finally:
        r.close()
