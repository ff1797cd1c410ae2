"""The blocking command (XEP-0191): the blocklist, block and unblock with their pushes and
errors, what a block does to stanzas both ways (3.3: inbound messages and IQ get/set bounce
<service-unavailable/>, inbound presence and IQ results vanish; outbound stanzas get
<not-acceptable/> with <blocked xmlns='urn:xmpp:blocking:errors'/>), polite blocking
(presence withdrawn both ways at once, subscriptions kept, presence restored on unblock),
the owner offline, and the blocklist as the default privacy list (section 8).

Every test uses fresh accounts (flows.new_user)."""
import asyncio
import time

import pytest

import rawclient as rc
import slixclient as sx
from flows import (NS_BLOCKING, NS_LAST, assert_error, assert_result, bare, befriend, block,
                   block_iq, blocked_error, blocklist, collect, deny_jid, disco_features,
                   error_for, is_block_push, is_iq, is_message, is_offline_presence, is_pres,
                   new_user, new_users, online, pres_status, presence, privacy_items,
                   privacy_item, privacy_names, privacy_set_list, quiet, roster, send_iq, take,
                   take_block_push, take_privacy_push, unblock, use_list, wait_pres)

WINDOW = 0.4


def assert_bounced(sender, id, addressee, condition="service-unavailable"):
    el = error_for(sender, id)
    err = rc.stanza_error(el)
    assert err is not None and err[1] == condition, f"expected <{condition}/>: {rc.show(el)}"
    if condition == "service-unavailable":
        assert err[0] == "cancel", rc.show(el)
    assert el.get("from") in (addressee, bare(addressee)), f"error from {el.get('from')}: {rc.show(el)}"
    return el


def assert_blocked(owner, id, addressee):
    """XEP-0191 3.3: outbound to a blocked JID -> <not-acceptable/> + <blocked/>."""
    el = assert_bounced(owner, id, addressee, "not-acceptable")
    assert blocked_error(el) is not None, (
        f"no <blocked xmlns='urn:xmpp:blocking:errors'/> in the error: {rc.show(el)}")
    return el


def message_from(c, body, timeout=None):
    return take(c, lambda e: is_message(e, body), timeout, what=f"the message {body!r}")


def close_all(*sessions):
    for s in sessions:
        s.close()


def test_disco_lists_blocking(server):
    (user,) = new_users(server, "bdi")
    c = online(server, user)
    try:
        assert NS_BLOCKING in disco_features(c)
    finally:
        c.close()


# ---------------------------------------------------------------- the blocklist

def test_empty_blocklist(server):
    (user,) = new_users(server, "bem")
    c = online(server, user)
    try:
        assert blocklist(c) == []
    finally:
        c.close()


def test_block_is_pushed_to_every_bound_resource(server):
    """3.2: result, then the same <block/> pushed to every resource (the contract: every
    bound one, also one that never asked for the blocklist); the blocklist lists both."""
    owner, c, d = new_users(server, "bpu", "bpuc", "bpud")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    o3 = online(server, owner, "bound", roster=False, presence=False)
    try:
        assert blocklist(o1) == []
        block(o1, c, d, others=[o2, o3])
        assert sorted(blocklist(o2)) == sorted([c, d])
        for s in (o1, o2, o3):
            quiet(s, 0.2, ignore=lambda e: not is_block_push(e), what="a second block push")
    finally:
        close_all(o1, o2, o3)


@pytest.mark.parametrize("items,condition", [
    ([], "bad-request"),
    (["@@"], "jid-malformed"),
    (["ok@example.test", "bad@@example.test"], "jid-malformed"),
], ids=["empty", "malformed", "one-malformed"])
def test_block_errors(server, items, condition):
    """3.2: an empty <block/> -> bad-request; an invalid JID -> jid-malformed; nothing
    is blocked, nothing pushed."""
    (owner,) = new_users(server, "ber")
    o = online(server, owner)
    try:
        assert_error(block_iq(o, "block", items), condition, f"block {items}")
        assert blocklist(o) == []
        quiet(o, 0.2, ignore=lambda e: not is_iq(e), what="a push for a failed block")
    finally:
        o.close()


def test_unblock_items_then_all(server):
    """3.4/3.5: unblock some (push with those items), then unblock all (an empty
    <unblock/>, pushed as such)."""
    owner, c, d, e = new_users(server, "bun", "bunc", "bund", "bune")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        block(o1, c, d, e, others=[o2])
        unblock(o2, c, others=[o1])
        assert sorted(blocklist(o1)) == sorted([d, e])
        unblock(o1, others=[o2])
        assert blocklist(o2) == []
    finally:
        close_all(o1, o2)


def test_blocklist_survives_logout(server):
    owner, c = new_users(server, "bsv", "bsvc")
    o = online(server, owner)
    block(o, c)
    o.close()
    o = online(server, owner)
    try:
        assert blocklist(o) == [c]
    finally:
        o.close()


# ---------------------------------------------------------------- enforcement

def test_blocked_contact_inbound_and_outbound(server):
    """3.3 for a blocked bare JID, from each of its resources: messages and IQ get bounce
    <service-unavailable/>, presence (directed and subscription requests) and IQ results
    vanish without error; the owner's messages and IQs to it get <not-acceptable/> with
    <blocked/>, its presence does not reach it. An unblocked contact is unaffected."""
    owner, c, d = new_users(server, "bio", "bioc", "biod")
    o = online(server, owner, "o")
    c1 = online(server, c, "one")
    c2 = online(server, c, "two")
    ds = online(server, d, "d")
    try:
        block(o, c)
        for cs in (c1, c2):
            presence(cs, to=o.jid, payload="<status>let me in</status>")
        presence(c1, to=owner, type_="subscribe")
        rid = send_iq(c1, "result", o.jid, payload="")
        bounced = [(c1, c1.message(o.jid, "full from one"), o.jid),
                   (c2, c2.message(owner, "bare from two"), owner),
                   (c2, send_iq(c2, "get", o.jid), o.jid),
                   (c1, send_iq(c1, "set", o.jid), o.jid)]
        for sender, id, to in bounced:
            assert_bounced(sender, id, to)
        ds.message(o.jid, "not blocked")
        message_from(o, "not blocked")
        quiet(o, WINDOW, ignore=lambda e: bare(e.get("from")) != c, what="a stanza from a blocked JID")
        for cs in (c1, c2):
            errs = [e for e in collect(cs, 0.1) if e.get("type") == "error"]
            assert not errs, "presence and IQ results vanish silently: " + " ".join(map(rc.show, errs))
            assert rid not in [e.get("id") for e in errs]

        presence(o, to=c1.jid, payload="<status>to the blocked</status>")
        m1 = o.message(c1.jid, "to a blocked full JID")
        m2 = o.message(c, "to a blocked bare JID")
        g1 = send_iq(o, "get", c2.jid)
        assert_blocked(o, m1, c1.jid)
        assert_blocked(o, m2, c)
        assert_blocked(o, g1, c2.jid)
        o.message(ds.jid, "still writing to others")
        message_from(ds, "still writing to others")
        for cs in (c1, c2):
            quiet(cs, WINDOW if cs is c1 else 0.1, ignore=lambda e: bare(e.get("from")) != owner,
                  what="a stanza from the owner who blocked it")
    finally:
        close_all(o, c1, c2, ds)


def test_blocking_a_full_jid_blocks_that_resource_only(server):
    owner, c = new_users(server, "bfj", "bfjc")
    o = online(server, owner, "o")
    desk = online(server, c, "desk")
    laptop = online(server, c, "laptop")
    try:
        block(o, desk.jid)
        assert blocklist(o) == [desk.jid]
        mid = desk.message(o.jid, "from the desk")
        laptop.message(o.jid, "from the laptop")
        assert_bounced(desk, mid, o.jid)
        message_from(o, "from the laptop")
        quiet(o, WINDOW, ignore=lambda e: not is_message(e), what="a message from the blocked resource")
        o.message(laptop.jid, "to the laptop")
        message_from(laptop, "to the laptop")
        assert_blocked(o, o.message(desk.jid, "to the desk"), desk.jid)
    finally:
        close_all(o, desk, laptop)


def test_blocking_a_domain_blocks_its_users(server):
    owner, d = new_users(server, "bdo", "bdod")
    far = new_user(server, "bdof", domain="example.test")
    o = online(server, owner, "o")
    fs = online(server, far, "f")
    ds = online(server, d, "d")
    try:
        block(o, "example.test")
        mid = fs.message(o.jid, "from afar")
        ds.message(o.jid, "from nearby")
        assert_bounced(fs, mid, o.jid)
        message_from(o, "from nearby")
        assert_blocked(o, o.message(fs.jid, "to afar"), fs.jid)
        quiet(o, 0.2, ignore=lambda e: not is_message(e), what="a message from a blocked domain")
    finally:
        close_all(o, fs, ds)


def test_own_resources_are_never_blocked(server):
    """Section 8 note: no rule blocks a user's resources from each other, also if the
    user blocks its own bare JID (the server may refuse that block instead)."""
    (owner,) = new_users(server, "bow")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        answer = block_iq(o1, "block", [owner])
        if answer.get("type") == "result":
            o1.message(o2.jid, "one to two")
            o2.message(o1.jid, "two to one")
            message_from(o2, "one to two")
            message_from(o1, "two to one")
            presence(o1, payload="<status>own echo</status>")
            wait_pres(o2, o1.jid, status="own echo")
        else:
            assert answer.get("type") == "error", rc.show(answer)
    finally:
        close_all(o1, o2)


# ---------------------------------------------------------------- polite blocking

def test_block_withdraws_presence_both_ways_and_keeps_subscriptions(server):
    """3.2: the blocked contact (subscribed) gets unavailable from each of the owner's
    available resources at once; the owner's resources get unavailable from the contact's
    bare JID. Polite blocking: both rosters keep 'both'. A third contact keeps seeing the
    owner and its updates; the blocked one gets none of them, nor an answer to its probe."""
    owner, c, d = new_users(server, "bpo", "bpoc", "bpod")
    befriend(server, owner, c)
    befriend(server, owner, d)
    cs = online(server, c, "c", payload="<status>c here</status>")
    ds = online(server, d, "d")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        for s in (o1, o2):
            wait_pres(cs, s.jid)
            wait_pres(ds, s.jid)
            wait_pres(s, cs.jid, status="c here")
        block(o1, c, others=[o2])
        for s in (o1, o2):
            wait_pres(cs, s.jid, "unavailable")
            p = wait_pres(s, c, "unavailable", bare_from=True)
            assert p.get("from") == c, f"unavailable from the contact's bare JID: {rc.show(p)}"
        quiet(ds, 0.1, ignore=lambda e: not (is_pres(e, type_="unavailable") and e.get("from") in (o1.jid, o2.jid)),
              what="unavailable presence at a contact that was not blocked")

        assert roster(cs)[owner]["subscription"] == "both"
        assert roster(o1)[c]["subscription"] == "both"

        presence(o1, payload="<status>new status</status>")
        wait_pres(ds, o1.jid, status="new status")
        presence(cs, payload="<status>c changed</status>")
        cs.sync()
        quiet(cs, WINDOW, ignore=lambda e: bare(e.get("from")) != owner or is_offline_presence(e),
              what="presence of the owner who blocked it")
        for s in (o1, o2):
            quiet(s, 0.1, ignore=lambda e: not is_pres(e, cs.jid) or pres_status(e) != "c changed",
                  what="presence of the blocked contact")

        # the blocked contact logs in again: its probe is not answered with presence
        cs.close()
        cs = online(server, c, "again")
        got = [e for e in collect(cs, WINDOW) if is_pres(e, owner, "available", bare_from=True)]
        assert not got, "the owner seen available: " + " ".join(map(rc.show, got))
        ds.close()
        ds = online(server, d, "again")
        wait_pres(ds, o1.jid, status="new status")
        wait_pres(ds, o2.jid)
    finally:
        close_all(cs, ds, o1, o2)


def test_unblock_restores_presence_both_ways(server):
    """3.4: the contact gets the owner's current presence (from each available resource,
    with the status set while blocked); the owner's resources get the contact's presence
    again (the server probes it)."""
    owner, c = new_users(server, "bub", "bubc")
    befriend(server, owner, c)
    cs = online(server, c, "c", payload="<status>c status</status>")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two", payload="<status>two status</status>")
    try:
        wait_pres(cs, o2.jid, status="two status")
        block(o1, c, others=[o2])
        wait_pres(cs, o1.jid, "unavailable")
        wait_pres(cs, o2.jid, "unavailable")
        presence(o1, payload="<show>away</show><status>while blocked</status>")
        o1.sync()
        collect(o1, 0.1)
        collect(o2, 0.1)
        unblock(o2, c, others=[o1])
        wait_pres(cs, o1.jid, status="while blocked", show="away")
        wait_pres(cs, o2.jid, status="two status")
        for s in (o1, o2):
            wait_pres(s, cs.jid, status="c status")
    finally:
        close_all(cs, o1, o2)


def test_unblocking_a_non_subscriber_sends_no_presence(server):
    owner, s = new_users(server, "bns", "bnss")
    ss = online(server, s, "s")
    o = online(server, owner, "o")
    try:
        block(o, s)
        unblock(o, s)
        quiet(ss, WINDOW, ignore=lambda e: bare(e.get("from")) != owner,
              what="presence for an entity not allowed to see it")
        quiet(o, 0.1, ignore=lambda e: not is_pres(e, s, bare_from=True), what="presence of a non-contact")
    finally:
        close_all(ss, o)


def test_block_while_owner_offline(server):
    """The blocklist applies with no session (it is the default list): a message to the
    bare JID bounces, a jabber:iq:last query bounces <service-unavailable/>, a
    subscription request is dropped for good (not delivered at the next login), a probe
    gets no available presence."""
    owner, c, s = new_users(server, "bof", "bofc", "bofs")
    befriend(server, owner, c)
    o = online(server, owner, "o")
    block(o, c, s)
    o.close()
    time.sleep(0.3)
    cs = online(server, c, "c")
    ss = online(server, s, "s")
    try:
        got = [e for e in collect(cs, 0.2) if is_pres(e, owner, "available", bare_from=True)]
        assert not got, [rc.show(e) for e in got]
        mid = cs.message(owner, "are you there?")
        assert_bounced(cs, mid, owner)
        answer = cs.iq("get", f"<query xmlns='{NS_LAST}'/>", to=owner)
        assert_error(answer, "service-unavailable", "last activity asked by a blocked contact")
        presence(ss, owner, "subscribe")
        ss.sync()
        o = online(server, owner, "back")
        got = [e for e in collect(o, WINDOW) if is_pres(e, s, "subscribe") or is_message(e)]
        assert not got, "kept for later: " + " ".join(map(rc.show, got))
        assert sorted(blocklist(o)) == sorted([c, s])
    finally:
        close_all(cs, ss, o)


# ---------------------------------------------------------------- the blocklist is the default privacy list

def test_block_creates_the_default_list(server):
    """Section 8: with no default list, blocking creates 'Blocked contacts' as the default;
    the block is an item type='jid' action='deny' with no kind children."""
    owner, c = new_users(server, "bdl", "bdlc")
    o = online(server, owner)
    try:
        block(o, c)
        active, default, names = privacy_names(o)
        assert (active, default, names) == (None, "Blocked contacts", ["Blocked contacts"])
        items = privacy_items(o, "Blocked contacts")
        assert len(items) == 1, items
        item = items[0]
        assert (item["type"], item["value"], item["action"], item["kinds"]) == ("jid", c, "deny", []), item
        unblock(o, c)
        assert blocklist(o) == []
        if "Blocked contacts" in privacy_names(o)[2]:
            assert not [i for i in privacy_items(o, "Blocked contacts") if i["value"] == c]
    finally:
        o.close()


def test_block_goes_into_an_existing_default_list(server):
    owner, c, friend = new_users(server, "bex", "bexc", "bexf")
    o = online(server, owner)
    try:
        use_list(o, "mine", [privacy_item("allow", 10, "jid", friend),
                             privacy_item("deny", 20, "subscription", "none", ["message"])],
                 active=False, default=True)
        block(o, c)
        active, default, names = privacy_names(o)
        assert (default, names) == ("mine", ["mine"]), (active, default, names)
        items = sorted(privacy_items(o, "mine"), key=lambda i: int(i["order"]))
        blocks = [i for i in items if i["value"] == c]
        assert len(blocks) == 1 and (blocks[0]["type"], blocks[0]["action"], blocks[0]["kinds"]) == (
            "jid", "deny", []), items
        assert items[0]["value"] == c, f"blocks come first (section 8): {items}"
        rest = [(i["type"], i["value"], i["action"], i["kinds"]) for i in items if i["value"] != c]
        assert rest == [("jid", friend, "allow", []), ("subscription", "none", "deny", ["message"])], items
        assert blocklist(o) == [c]
    finally:
        o.close()


def test_privacy_edits_of_the_default_list_are_blocks(server):
    """Section 8: a jid/deny item without kinds added to the default list through
    XEP-0016 is a block (blocklist, block push to every resource, enforced); items with
    kinds or allow items are not; removing it there unblocks."""
    owner, c, d, e = new_users(server, "bpe", "bpec", "bped", "bpee")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    cs = online(server, c, "c")
    try:
        use_list(o1, "dflt", [privacy_item("allow", 50, "jid", e)], others=[o2], active=False, default=True)
        assert blocklist(o1) == []
        assert_result(privacy_set_list(o1, "dflt", [
            deny_jid(c, 1),
            deny_jid(d, 2, ["message"]),
            privacy_item("allow", 50, "jid", e),
        ]))
        for s in (o1, o2):
            take_privacy_push(s, "dflt")
            take_block_push(s, "block", [c])
        assert blocklist(o2) == [c]
        mid = cs.message(o2.jid, "blocked through privacy lists")
        assert_bounced(cs, mid, o2.jid)

        assert_result(privacy_set_list(o2, "dflt", [deny_jid(d, 2, ["message"])]))
        assert blocklist(o1) == []
        cs.message(o1.jid, "unblocked through privacy lists")
        message_from(o1, "unblocked through privacy lists")
    finally:
        close_all(o1, o2, cs)


def test_block_then_privacy_view_then_unblock_via_privacy(server):
    """Both protocols on one block: blocked with XEP-0191, seen and removed with XEP-0016."""
    owner, c = new_users(server, "bbo", "bboc")
    o = online(server, owner, "o")
    cs = online(server, c, "c")
    try:
        block(o, c)
        default = privacy_names(o)[1]
        assert default, "blocking made no default list"
        assert [i for i in privacy_items(o, default) if i["value"] == c and i["action"] == "deny"]
        assert_result(privacy_set_list(o, default, [privacy_item("allow", 1, "jid", "someone@example.test")]))
        take_privacy_push(o, default)
        assert blocklist(o) == []
        cs.message(o.jid, "free again")
        message_from(o, "free again")
    finally:
        close_all(o, cs)


def test_another_active_list_overrides_the_blocklist(server):
    """Section 8 implication 5 / XEP-0016 2.2 rule 1: a session with another active list
    does not apply the default list, hence not the blocks."""
    owner, c = new_users(server, "bao", "baoc")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    cs = online(server, c, "c")
    try:
        block(o1, c, others=[o2])
        use_list(o1, "open", [privacy_item("deny", 1, "jid", "nobody@example.test")], others=[o2])
        assert privacy_names(o1)[0] == "open"
        cs.message(o1.jid, "through the active list")
        mid = cs.message(o2.jid, "into the blocklist")
        message_from(o1, "through the active list")
        assert_bounced(cs, mid, o2.jid)
    finally:
        close_all(o1, o2, cs)


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_blocks_and_slixmpp_contacts_observe(server):
    """slixmpp's XEP-0191 plugin: the owner blocks a contact (both-way subscription);
    the contact's slixmpp sees the owner go offline and gets <service-unavailable/> for
    its message, while a third slixmpp contact keeps seeing the owner online; the owner's
    client gets the push and the blocklist; after unblocking the contact sees the owner
    online again."""
    owner, c, d = new_users(server, "sbo", "sbc", "sbd")
    befriend(server, owner, c)
    befriend(server, owner, d)

    async def until(cond, what, timeout=6):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def scenario():
        o = sx.connect(owner, server.users[owner], server.port, "SCRAM-SHA-256", resource="o")
        cs = sx.connect(c, server.users[c], server.port, "SCRAM-SHA-256", resource="c")
        ds = sx.connect(d, server.users[d], server.port, "SCRAM-SHA-256", resource="d")
        for s in (o, cs, ds):
            assert await s.started == "session"
        o.client.register_plugin("xep_0191")
        pushes = asyncio.Queue()
        o.client.add_event_handler("blocked", lambda iq: pushes.put_nowait(("blocked", iq)))
        o.client.add_event_handler("unblocked", lambda iq: pushes.put_nowait(("unblocked", iq)))
        errors = asyncio.Queue()
        cs.client.add_event_handler("message_error", lambda m: errors.put_nowait(m))
        for s in (o, cs, ds):
            await s.client.get_roster(timeout=5)
            s.client.send_presence()
        at_c = cs.client.client_roster[owner]
        at_d = ds.client.client_roster[owner]
        await until(lambda: "o" in at_c.resources and "o" in at_d.resources, "the owner online at both")

        await o.client["xep_0191"].block(c, timeout=5)
        kind, iq = await asyncio.wait_for(pushes.get(), 5)
        assert kind == "blocked" and {str(j) for j in iq["block"]["items"]} == {c}, str(iq)
        blocked = await o.client["xep_0191"].get_blocked(timeout=5)
        assert {str(j) for j in blocked["blocklist"]["items"]} == {c}, str(blocked)
        await until(lambda: "o" not in at_c.resources, "the owner offline at the blocked contact")
        assert at_c["subscription"] == "both"
        cs.client.send_message(mto=f"{owner}/o", mbody="hello?", mtype="chat")
        err = await asyncio.wait_for(errors.get(), 5)
        assert err["error"]["condition"] == "service-unavailable", str(err)
        o.client.send_presence(pstatus="only for friends")
        await until(lambda: at_d.resources.get("o", {}).get("status") == "only for friends",
                    "the owner's new status at the other contact")
        assert "o" not in at_c.resources

        await o.client["xep_0191"].unblock(c, timeout=5)
        kind, iq = await asyncio.wait_for(pushes.get(), 5)
        assert kind == "unblocked" and {str(j) for j in iq["unblock"]["items"]} == {c}, str(iq)
        await until(lambda: at_c.resources.get("o", {}).get("status") == "only for friends",
                    "the owner back online at the unblocked contact")
    sx.run(scenario, timeout=40)
