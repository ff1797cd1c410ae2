"""XEP-0012 Last Activity, offline user query: an IQ get in 'jabber:iq:last' to an
account's bare JID is answered by the server: seconds since the account's last logout and
the status of its last unavailable presence to entities allowed to see its presence
(subscription 'from'/'both' in its roster), 0 while it has an available resource, and
<forbidden/> to anyone else."""
import time

import rawclient as rc
from flows import NS_LAST, befriend, new_users, online, presence
from rawclient import q


def last(c, to, id=None):
    return c.iq("get", f"<query xmlns='{NS_LAST}'/>", to=to, id=id)


def seconds_and_status(answer):
    assert answer.get("type") == "result", rc.show(answer)
    query = answer.find(q(NS_LAST, "query"))
    assert query is not None, f"no <query/> in the result: {rc.show(answer)}"
    seconds = query.get("seconds")
    assert seconds is not None and seconds.isdigit(), f"'seconds' is required: {rc.show(answer)}"
    return int(seconds), (query.text or "")


def test_offline_contact_seconds_since_logout_and_status(server):
    user, contact = new_users(server, "la", "lac")
    befriend(server, user, contact, mutual=False)     # user may see contact's presence
    c = online(server, contact)
    presence(c, type_="unavailable", payload="<status>Heading Home</status>")
    c.sync()
    c.close()
    logout = time.monotonic()
    time.sleep(2.2)
    u = online(server, user)
    try:
        answer = last(u, contact, id="last1")
        asked = time.monotonic()
        assert answer.get("from") == contact, rc.show(answer)
        seconds, status = seconds_and_status(answer)
        assert 2 <= seconds <= int(asked - logout) + 1, (seconds, asked - logout)
        assert status == "Heading Home", rc.show(answer)
    finally:
        u.close()


def test_logout_without_unavailable_status_has_empty_status(server):
    user, contact = new_users(server, "le", "lec")
    befriend(server, user, contact, mutual=False)
    c = online(server, contact, payload="<status>available status, not a goodbye</status>")
    c.close()                 # stream end, no unavailable presence
    time.sleep(1.2)
    u = online(server, user)
    try:
        seconds, status = seconds_and_status(last(u, contact))
        assert 1 <= seconds <= 4, seconds
        assert status == "", f"status of the last *unavailable* presence expected: {status!r}"
    finally:
        u.close()


def test_online_contact_is_zero_seconds(server):
    """XEP-0012 4: with an available resource, seconds='0'."""
    user, contact = new_users(server, "lo", "loc")
    befriend(server, user, contact)
    c = online(server, contact)
    u = online(server, user)
    try:
        seconds, _ = seconds_and_status(last(u, contact))
        assert seconds == 0
    finally:
        c.close()
        u.close()


def test_non_subscriber_is_forbidden(server):
    """XEP-0012 4: not authorized to see the user's presence -> <forbidden/>; also for a
    contact the user merely subscribed to itself ('to' in the user's roster)."""
    owner, stranger, watched = new_users(server, "lf", "lfs", "lfw")
    befriend(server, owner, watched, mutual=False)    # owner -> watched ('to' at owner)
    o = online(server, owner)
    o.close()
    time.sleep(0.3)
    for asker in (stranger, watched):
        s = online(server, asker)
        try:
            answer = last(s, owner, id="lf1")
            assert answer.get("type") == "error", f"{asker} learnt something: {rc.show(answer)}"
            assert rc.stanza_error(answer) == ("auth", "forbidden"), rc.show(answer)
            assert answer.find(q(NS_LAST, "query")) is None or not (
                answer.find(q(NS_LAST, "query")).get("seconds")), rc.show(answer)
        finally:
            s.close()


def test_non_subscriber_is_forbidden_while_online_too(server):
    owner, stranger = new_users(server, "lg", "lgs")
    o = online(server, owner)
    s = online(server, stranger)
    try:
        answer = last(s, owner)
        assert rc.stanza_error(answer) == ("auth", "forbidden"), rc.show(answer)
    finally:
        o.close()
        s.close()


def test_unknown_account_is_service_unavailable(server):
    """RFC 6121 8.5.1: an IQ to a nonexistent account -> <service-unavailable/>."""
    (user,) = new_users(server, "lu")
    u = online(server, user)
    try:
        answer = last(u, "no-such-account@localhost")
        assert rc.stanza_error(answer) == ("cancel", "service-unavailable"), rc.show(answer)
    finally:
        u.close()
