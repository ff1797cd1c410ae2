"""Access rules are evaluated from memory (issue 4, "no database round trip per routed
stanza"): with the database cut off from a running Herald, a block made before still
refuses the blocked contact's messages, IQs and presence, while everyone else's stanzas
to the online owner are still delivered. Were the rules read from PostgreSQL per stanza,
the blocked message would get through or fail with internal-server-error instead."""
import harness
import rawclient as rc
from flows import (assert_result, befriend, block, collect, error_for, is_iq, is_message, is_pres,
                   new_users, online, presence, send_iq, take)


def cut_database(dbname):
    harness.psql("postgres", f"ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS false")
    harness.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             f"WHERE datname = '{dbname}'")


def restore_database(dbname):
    harness.psql("postgres", f"ALTER DATABASE \"{dbname}\" ALLOW_CONNECTIONS true")


def test_rules_hold_without_the_database(make_server):
    # Archiving needs the database on every message; this test is about the cached rules.
    srv = make_server({"archive": {"enabled": False}})
    owner, friend, foe = new_users(srv, "cown", "cfri", "cfoe")
    befriend(srv, owner, friend)
    befriend(srv, owner, foe)
    o = online(srv, owner)
    f = online(srv, friend)
    x = online(srv, foe)
    try:
        block(o, foe)
        collect(o, 0.3)
        collect(x, 0.3)
        cut_database(srv.dbname)
        # The cut is real: what needs the database now fails (a message to an offline
        # account needs an account lookup).
        f.send("<message to='nobody-here@localhost' id='m0' type='chat'><body>x</body></message>")
        err = rc.stanza_error(error_for(f, "m0"))
        assert err is not None and err[1] == "internal-server-error", err

        # The blocked contact: message bounced with the rule's error, nothing delivered.
        x.send(f"<message to='{owner}' id='m1' type='chat'><body>blocked</body></message>")
        err = rc.stanza_error(error_for(x, "m1"))
        assert err is not None and err[1] == "service-unavailable", err
        # Its IQ to the owner's resource too.
        x.send(f"<iq type='get' to='{o.jid}' id='q1'><query xmlns='jabber:iq:version'/></iq>")
        err = rc.stanza_error(error_for(x, "q1"))
        assert err is not None and err[1] == "service-unavailable", err
        # Its presence update does not reach the owner.
        presence(x, payload="<status>still here</status>")

        # Everyone else is unaffected.
        f.send(f"<message to='{owner}' id='m2' type='chat'><body>allowed</body></message>")
        take(o, lambda e: is_message(e, "allowed"), what="the friend's message")
        got = collect(o, 0.5)
        assert not any(is_message(e, "blocked") for e in got), [rc.show(e) for e in got]
        assert not any(is_pres(e, frm=foe, bare_from=True) for e in got), [rc.show(e) for e in got]
    finally:
        restore_database(srv.dbname)
        for c in (o, f, x):
            c.close()
    # With the database back, the server works normally again.
    o = online(srv, owner)
    try:
        id = send_iq(o, "get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
        assert_result(take(o, lambda e: is_iq(e, id), what="the ping result"), "a ping")
    finally:
        o.close()
