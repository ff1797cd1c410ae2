"""Unique and stable stanza ids (XEP-0359) as the archive assigns them: a message to a
local account that is archived gets <stanza-id by=account/> (its archive id, XEP-0313
section 3.5); any <stanza-id/> claiming the account's JID that someone else put there is
removed (section 5 rule 2), whether or not the message is archived and even with archiving
off; ids by others and <origin-id/> are kept (rule 3); the sender's own archive id never
travels to the recipient.

Every test uses fresh accounts (flows.new_user)."""
import rawclient as rc
from flows import disco_features, error_for, new_users, online, take
from rawclient import q
from test_mam import NS_HINTS, NS_SID, archive, close_all, message_from, stanza_ids


def sid(id, by):
    return f"<stanza-id xmlns='{NS_SID}' id='{id}' by='{by}'/>"


def origin(id):
    return f"<origin-id xmlns='{NS_SID}' id='{id}'/>"


def origin_ids(el):
    return [o.get("id") for o in el.findall(q(NS_SID, "origin-id"))]


def test_account_advertises_stanza_ids(server):
    (user,) = new_users(server, "sdi")
    c = online(server, user)
    try:
        assert NS_SID in disco_features(c, domain=user)
    finally:
        c.close()


def test_each_archived_message_gets_its_own_id(server):
    a, b = new_users(server, "sua", "sub")
    ca, cb = online(server, a), online(server, b, "r")
    try:
        texts = [f"u{i}" for i in range(6)]
        for i, t in enumerate(texts):
            ca.message(b if i % 2 else cb.jid, t)   # bare and full JID alike
        ca.sync()
        ids = []
        for t in texts:
            got = message_from(cb, t)
            sids = stanza_ids(got)
            assert len(sids) == 1 and sids[0].get("by") == b, rc.show(got)
            assert not list(sids[0]), "a stanza-id has no children"
            ids.append(sids[0].get("id"))
        assert len(set(ids)) == len(ids)
        assert all(len(i) >= 16 for i in ids), ids   # unpredictable: CSPRNG, not a counter
        _, results = archive(cb)
        assert [r.id for r in results] == ids
    finally:
        close_all(ca, cb)


def test_forged_claims_are_replaced_others_and_origin_id_kept(server):
    """A sender's <stanza-id/> claiming the recipient's JID (also written differently) is
    removed and the server's own added; one by another entity and the <origin-id/> stay,
    in the delivered message and in both archives."""
    a, b = new_users(server, "sfa", "sfb")
    ca, cb = online(server, a), online(server, b)
    extra = (sid("forged", b) + sid("forged-case", b.upper()) + sid("room-id", "room@muc.example.org")
             + origin("origin-1"))
    try:
        ca.message(cb.jid, "trust me", extra=extra)
        got = message_from(cb, "trust me")
        ours = stanza_ids(got, b)
        assert len(ours) == 1, f"exactly one stanza-id by {b}: {rc.show(got)}"
        assert ours[0].get("id") not in ("forged", "forged-case")
        assert stanza_ids(got, b.upper()) == []
        assert [s.get("id") for s in stanza_ids(got, "room@muc.example.org")] == ["room-id"]
        assert origin_ids(got) == ["origin-1"]

        _, results = archive(cb)
        assert len(results) == 1 and results[0].id == ours[0].get("id")
        archived = results[0].message
        assert [s.get("id") for s in stanza_ids(archived, b)] == [results[0].id]
        assert [s.get("id") for s in stanza_ids(archived, "room@muc.example.org")] == ["room-id"]
        assert origin_ids(archived) == ["origin-1"]

        _, results = archive(ca)   # the sender's copy: the same, without the forged claims
        assert origin_ids(results[0].message) == ["origin-1"]
        assert [s.get("id") for s in stanza_ids(results[0].message, "room@muc.example.org")] == ["room-id"]
        assert stanza_ids(results[0].message, b) == []
    finally:
        close_all(ca, cb)


def test_sender_cannot_smuggle_its_own_ids(server):
    """A client's <stanza-id by=its own account/> is removed from what it sends; the
    sender's archive id does not reach the recipient either."""
    a, b = new_users(server, "ssa", "ssb")
    ca, cb = online(server, a), online(server, b)
    try:
        ca.message(cb.jid, "outgoing", extra=sid("mine", a))
        got = message_from(cb, "outgoing")
        assert stanza_ids(got, a) == [], f"the sender's ids must not reach the recipient: {rc.show(got)}"
        assert len(stanza_ids(got, b)) == 1
        _, results = archive(ca)
        assert [s.get("id") for s in stanza_ids(results[0].message, a)] == [results[0].id]
        assert results[0].id != "mine"
    finally:
        close_all(ca, cb)


def test_claims_are_removed_from_messages_that_are_not_archived(server):
    """Rule 2 holds even when the server adds no id of its own: hints, bodiless messages,
    headlines."""
    a, b = new_users(server, "sna", "snb")
    ca, cb = online(server, a), online(server, b)
    try:
        ca.message(cb.jid, "no-store", extra=f"<no-store xmlns='{NS_HINTS}'/>" + sid("f1", b))
        ca.message(cb.jid, "headline", type_="headline", extra=sid("f2", b) + sid("other", "x@example.org"))
        ca.send(f"<message to='{cb.jid}' type='chat' id='cs-1'>"
                f"<active xmlns='http://jabber.org/protocol/chatstates'/>{sid('f3', b)}</message>")
        ca.sync()
        assert stanza_ids(message_from(cb, "no-store")) == []
        headline = message_from(cb, "headline")
        assert [s.get("id") for s in stanza_ids(headline)] == ["other"], rc.show(headline)
        state = take(cb, lambda e: e.get("id") == "cs-1", what="the chat state")
        assert stanza_ids(state) == []
        _, results = archive(cb)
        assert results == []
    finally:
        close_all(ca, cb)


def test_claims_are_removed_with_archiving_off(make_server):
    srv = make_server({"archive": {"enabled": False}})
    ca = online(srv, "alice@localhost")
    cb = online(srv, "bob@localhost")
    try:
        assert NS_SID not in disco_features(cb, domain="bob@localhost")
        ca.message(cb.jid, "forged", extra=sid("f", "bob@localhost") + sid("keep", "room@muc.example.org")
                   + origin("o"))
        got = message_from(cb, "forged")
        assert [s.get("id") for s in stanza_ids(got)] == ["keep"]
        assert origin_ids(got) == ["o"]
        ca.message(cb.jid, "mine", extra=sid("a", "alice@localhost"))
        assert stanza_ids(message_from(cb, "mine")) == []
    finally:
        close_all(ca, cb)


def test_no_id_for_a_message_that_bounces(server):
    """A message to an account that does not exist is neither archived nor stamped."""
    (a,) = new_users(server, "sba")
    ca = online(server, a)
    try:
        id = ca.message("nobody-here@localhost", "anyone?")
        el = error_for(ca, id)
        assert rc.stanza_error(el)[1] == "service-unavailable"
        assert stanza_ids(el, "nobody-here@localhost") == [], rc.show(el)
    finally:
        ca.close()
