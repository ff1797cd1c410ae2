"""Invisibility (XEP-0186, namespaces urn:xmpp:invisible:1 and :0) and polite blocking
(RFC 2779 5.1.15 with a XEP-0016 <presence-out/> deny item), observed from the contacts'
side: the hidden contact sees the owner (or one of her resources) offline while a third
contact keeps seeing her online; subscriptions stay as they are; messages keep flowing.

Every test uses fresh accounts (flows.new_user)."""
import asyncio
import time
import xml.etree.ElementTree as ET

import pytest

import rawclient as rc
import slixclient as sx
from flows import (NS_INVISIBLE, NS_INVISIBLE0, assert_result, bare, befriend, collect,
                   deny_jid, disco_features, invisible, is_message, is_offline_presence, is_pres, new_users,
                   online, presence, quiet, roster, take, use_list, visible, wait_pres)

WINDOW = 0.4


def message_from(c, body, timeout=None):
    return take(c, lambda e: is_message(e, body), timeout, what=f"the message {body!r}")


def close_all(*sessions):
    for s in sessions:
        s.close()


def available_from(c, jid, duration=WINDOW):
    """Available presence from jid (a full JID, or any resource of a bare JID) arriving
    within duration (or already skipped)."""
    exact = "/" in jid
    return [e for e in collect(c, duration)
            if is_pres(e, jid, "available", bare_from=not exact)]


def test_disco_lists_invisibility(server):
    (user,) = new_users(server, "idi")
    c = online(server, user)
    try:
        features = disco_features(c)
        assert {NS_INVISIBLE, NS_INVISIBLE0} <= features, sorted(features)
    finally:
        c.close()


# ---------------------------------------------------------------- XEP-0186

@pytest.mark.parametrize("ns", [NS_INVISIBLE, NS_INVISIBLE0])
def test_invisible_resource_looks_offline_while_the_other_is_seen(server, ns):
    """Going invisible: every contact gets unavailable from that resource (only); its
    later broadcasts reach the user's own other resource only; a contact's probe finds
    the visible resource online and the invisible one offline; <visible/> sends the
    contacts the last broadcast presence."""
    owner, c, d = new_users(server, "inv", "invc", "invd")
    befriend(server, owner, c)
    befriend(server, owner, d)
    cs = online(server, c, "c")
    ds = online(server, d, "d")
    o1 = online(server, owner, "one", payload="<status>one</status>")
    o2 = online(server, owner, "two", payload="<status>two</status>")
    try:
        for x in (cs, ds):
            wait_pres(x, o1.jid, status="one")
            wait_pres(x, o2.jid, status="two")
        assert_result(invisible(o1, ns=ns), "going invisible")
        for x in (cs, ds):
            wait_pres(x, o1.jid, "unavailable")
        presence(o1, payload="<show>dnd</show><status>secret</status>")
        wait_pres(o2, o1.jid, status="secret")
        for x in (cs, ds):
            quiet(x, WINDOW if x is cs else 0.1,
                  ignore=lambda e: bare(e.get("from")) != owner or is_offline_presence(e),
                  what="presence of an invisible resource, or about the visible one")
        presence(o2, payload="<status>two again</status>")
        wait_pres(cs, o2.jid, status="two again")

        cs.close()
        cs = online(server, c, "again")
        wait_pres(cs, o2.jid, status="two again")
        got = available_from(cs, o1.jid)
        assert not got, "a probe saw the invisible resource: " + " ".join(map(rc.show, got))
        assert roster(cs)[owner]["subscription"] == "both"

        assert_result(visible(o1, ns=ns), "becoming visible")
        for x in (cs, ds):
            wait_pres(x, o1.jid, status="secret", show="dnd")
    finally:
        close_all(cs, ds, o1, o2)


def test_messages_and_directed_presence_flow_while_invisible(server):
    owner, c = new_users(server, "imd", "imdc")
    befriend(server, owner, c)
    cs = online(server, c, "c")
    o = online(server, owner, "o")
    try:
        wait_pres(cs, o.jid)
        assert_result(invisible(o))
        wait_pres(cs, o.jid, "unavailable")
        cs.message(o.jid, "to the invisible")
        message_from(o, "to the invisible")
        o.message(cs.jid, "from the invisible")
        message_from(cs, "from the invisible")
        presence(o, to=cs.jid, payload="<status>just for you</status>")
        wait_pres(cs, o.jid, status="just for you")
    finally:
        close_all(cs, o)


@pytest.mark.parametrize("probe", [True, False])
def test_invisible_from_the_start(server, probe):
    """Invisible before initial presence: the contacts learn nothing; probe='true' makes
    the server probe them (the user sees them online), probe='false' does not."""
    owner, c, d = new_users(server, "ist", "istc", "istd")
    befriend(server, owner, c)
    befriend(server, owner, d)
    cs = online(server, c, "c", payload="<status>c online</status>")
    ds = online(server, d, "d", payload="<status>d online</status>")
    o = online(server, owner, "o", presence=False)
    try:
        assert_result(invisible(o, probe=probe))
        presence(o, payload="<status>hidden</status>")
        o.sync()
        if probe:
            wait_pres(o, cs.jid, status="c online")
            wait_pres(o, ds.jid, status="d online")
        else:
            quiet(o, WINDOW, ignore=lambda e: bare(e.get("from")) not in (c, d),
                  what="contacts' presence although probe='false'")
        for x in (cs, ds):
            quiet(x, WINDOW if x is cs else 0.1,
                  ignore=lambda e: bare(e.get("from")) != owner or is_offline_presence(e),
                  what="anything from an invisible session")
    finally:
        close_all(cs, ds, o)


def test_visible_sends_the_last_broadcast_presence(server):
    owner, c = new_users(server, "ivi", "ivic")
    befriend(server, owner, c)
    cs = online(server, c, "c")
    o = online(server, owner, "o", payload="<status>before</status>")
    try:
        wait_pres(cs, o.jid, status="before")
        assert_result(invisible(o))
        wait_pres(cs, o.jid, "unavailable")
        presence(o, payload="<show>away</show><status>during</status>")
        o.sync()
        assert_result(visible(o))
        wait_pres(cs, o.jid, status="during", show="away")
        presence(o, payload="<status>after</status>")
        wait_pres(cs, o.jid, status="after")
    finally:
        close_all(cs, o)


def test_invisibility_ends_with_the_session(server):
    owner, c = new_users(server, "ien", "ienc")
    befriend(server, owner, c)
    cs = online(server, c, "c")
    o = online(server, owner, "o")
    try:
        wait_pres(cs, o.jid)
        assert_result(invisible(o))
        wait_pres(cs, o.jid, "unavailable")
        presence(o, payload="<status>hidden</status>")
        o.close()
        got = available_from(cs, owner, 0.2)
        assert not got, [rc.show(e) for e in got]
        o = online(server, owner, "o", payload="<status>visible again</status>")
        wait_pres(cs, o.jid, status="visible again")
    finally:
        close_all(cs, o)


# ---------------------------------------------------------------- polite blocking (presence-out)

@pytest.mark.parametrize("how", ["default", "active"])
def test_presence_out_deny_is_polite_blocking(server, how):
    """RFC 2779 5.1.15 with XEP-0016: a <presence-out/> deny item for C taking effect (as
    the default list: both resources; as one session's active list: that resource)
    sends C unavailable at once; C keeps 'both' in its roster, gets none of the owner's
    updates and no available presence for its probe, while D keeps seeing the owner and
    its updates. C's presence and messages still reach the owner."""
    owner, c, d = new_users(server, "pol", "polc", "pold")
    befriend(server, owner, c)
    befriend(server, owner, d)
    cs = online(server, c, "c", payload="<status>c here</status>")
    ds = online(server, d, "d")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        for x in (cs, ds):
            wait_pres(x, o1.jid)
            wait_pres(x, o2.jid)
        use_list(o1, "polite", [deny_jid(c, 1, ["presence-out"])], others=[o2],
                 active=how == "active", default=how == "default")
        hidden = [o1, o2] if how == "default" else [o1]
        for s in hidden:
            wait_pres(cs, s.jid, "unavailable")
        quiet(cs, 0.1, ignore=lambda e: not any(is_pres(e, s.jid, "unavailable") for s in (o1, o2)),
              what="unavailable from a resource the list does not apply to")
        quiet(ds, 0.1, ignore=lambda e: not (is_pres(e, type_="unavailable") and e.get("from") in (o1.jid, o2.jid)),
              what="unavailable presence at a contact the list does not name")
        assert roster(cs)[owner]["subscription"] == "both"
        assert roster(o1)[c]["subscription"] == "both"

        presence(o1, payload="<status>news</status>")
        wait_pres(ds, o1.jid, status="news")
        quiet(cs, WINDOW, ignore=lambda e: not is_pres(e, o1.jid),
              what="an update of a resource whose presence-out denies it")
        presence(cs, payload="<status>c changed</status>")
        for s in (o1, o2):
            wait_pres(s, cs.jid, status="c changed")
        cs.message(o1.jid, "still talking?")
        message_from(o1, "still talking?")
        o1.message(cs.jid, "sure")
        message_from(cs, "sure")

        cs.close()
        cs = online(server, c, "again")
        if how == "active":
            wait_pres(cs, o2.jid)        # the other resource is still seen
        got = [e for e in collect(cs, WINDOW) if any(is_pres(e, s.jid, "available") for s in hidden)]
        assert not got, "a probe saw a hidden resource: " + " ".join(map(rc.show, got))
        ds.close()
        ds = online(server, d, "again")
        wait_pres(ds, o1.jid, status="news")
        wait_pres(ds, o2.jid)
    finally:
        close_all(cs, ds, o1, o2)


def test_presence_out_deny_for_a_non_watcher_sends_nothing(server):
    """A contact that does not receive the owner's presence ('to' in her roster: she is
    subscribed to it, not it to her) gets no unavailable when the item takes effect."""
    owner, t = new_users(server, "pnw", "pnwt")
    befriend(server, owner, t, mutual=False)
    ts = online(server, t, "t")
    o = online(server, owner, "o")
    try:
        use_list(o, "quiet", [deny_jid(t, 1, ["presence-out"])])
        quiet(ts, WINDOW, ignore=lambda e: bare(e.get("from")) != owner,
              what="presence for a contact that never received the owner's presence")
    finally:
        close_all(ts, o)


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_invisible_command(server):
    """slixmpp's XEP-0186 plugin (urn:xmpp:invisible:0): the owner goes invisible and a
    slixmpp contact sees her go offline, still exchanges messages with her, and sees her
    back after <visible/> (sent by hand: slixmpp 1.8.3 puts <visible/> in the wrong
    namespace)."""
    owner, c = new_users(server, "six", "sixc")
    befriend(server, owner, c)

    async def until(cond, what, timeout=6):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def scenario():
        o = sx.connect(owner, server.users[owner], server.port, "SCRAM-SHA-256", resource="o")
        cs = sx.connect(c, server.users[c], server.port, "SCRAM-SHA-256", resource="c")
        for s in (o, cs):
            assert await s.started == "session"
        o.client.register_plugin("xep_0186")
        for s in (o, cs):
            await s.client.get_roster(timeout=5)
        o.client.send_presence(pstatus="here")
        cs.client.send_presence()
        at_c = cs.client.client_roster[owner]
        await until(lambda: at_c.resources.get("o", {}).get("status") == "here", "the owner online")

        await o.client["xep_0186"].set_invisible(timeout=5)
        await until(lambda: "o" not in at_c.resources, "the owner gone invisible")
        cs.client.send_message(mto=o.jid, mbody="anyone there?", mtype="chat")
        m = await asyncio.wait_for(o.messages.get(), 5)
        assert m["body"] == "anyone there?"
        o.client.send_message(mto=cs.jid, mbody="yes, hidden", mtype="chat")
        m = await asyncio.wait_for(cs.messages.get(), 5)
        assert m["body"] == "yes, hidden"
        await asyncio.sleep(WINDOW)
        assert "o" not in at_c.resources

        iq = o.client.make_iq_set()
        iq.xml.append(ET.Element(f"{{{NS_INVISIBLE0}}}visible"))
        await iq.send(timeout=5)
        await until(lambda: at_c.resources.get("o", {}).get("status") == "here", "the owner visible again")
    sx.run(scenario, timeout=30)
