"""Roster management: RFC 6121 section 2 (get, set, remove, pushes to every interested
resource, error cases) and roster versioning (2.6).

Every test works on fresh accounts (flows.new_user), so rosters start empty."""
import pytest

import rawclient as rc
from flows import (NS_ROSTER, NS_ROSTERVER, NS_PREAPPROVAL, check_push, collect,
                   is_roster_push, item_of, item_xml, login, new_user, new_users, quiet, roster,
                   roster_get, roster_query, roster_remove, roster_set, wait_push)
from rawclient import q


def error_of(answer):
    assert answer.get("type") == "error", f"expected an error: {rc.show(answer)}"
    return rc.stanza_error(answer)


def interested(server, jid, resource=None):
    """A connected resource that requested the roster (RFC 6121 2.2)."""
    c = login(server, jid, resource=resource)
    assert roster_get(c).get("type") == "result"
    return c


# ---------------------------------------------------------------- features, get

def test_stream_features_announce_roster_versioning_and_pre_approval(server):
    """RFC 6121 2.6.1 and 3.4: <ver/> and <sub/> in the features of the bound stream."""
    c = login(server, "alice@localhost")
    try:
        assert c.feature(NS_ROSTERVER, "ver") is not None, rc.show(c.features)
        assert c.feature(NS_PREAPPROVAL, "sub") is not None, rc.show(c.features)
    finally:
        c.close()


def test_empty_roster_is_a_result_with_an_empty_query(server):
    """RFC 6121 2.1.4: an existing but empty roster -> result with <query/> and no items
    (never an error); without 'ver' in the request the result still carries the version."""
    jid = new_user(server, "empty")
    c = login(server, jid)
    try:
        answer = roster_get(c, id="get-empty")
        assert answer.get("type") == "result", rc.show(answer)
        assert answer.get("to") in (None, c.jid), rc.show(answer)
        assert answer.get("from") in (None, jid), rc.show(answer)
        query = roster_query(answer)
        assert query is not None, f"no <query/> in the roster result: {rc.show(answer)}"
        assert query.findall(q(NS_ROSTER, "item")) == [], rc.show(answer)
        assert query.get("ver") is not None, f"no 'ver' in the roster result: {rc.show(answer)}"
    finally:
        c.close()


def test_roster_get_addressed_to_own_bare_jid(server):
    jid = new_user(server, "own")
    c = login(server, jid)
    try:
        answer = roster_get(c, to=jid)
        assert answer.get("type") == "result", rc.show(answer)
        assert roster_query(answer) is not None, rc.show(answer)
    finally:
        c.close()


# ---------------------------------------------------------------- add, update, remove

def test_add_item_with_name_and_groups_pushes_to_every_interested_resource(server):
    """RFC 6121 2.3.2: result to the sender, a push with the new item (subscription
    'none') to all interested resources including the sender; nobody else gets one."""
    user, contact, other = new_users(server, "ros", "ct", "oth")
    desk = interested(server, user, "desk")
    phone = interested(server, user, "phone")
    stranger = interested(server, other, "x")
    try:
        answer = roster_set(desk, contact, name="Contact \u00e9", groups=["Friends", "Work"])
        assert answer.get("type") == "result", rc.show(answer)
        assert roster_query(answer) is None or not list(roster_query(answer)), rc.show(answer)
        for c in (desk, phone):
            item = wait_push(c, contact)
            assert item["name"] == "Contact \u00e9", item
            assert item["groups"] == ["Friends", "Work"], item
            assert item["subscription"] == "none" and item["ask"] is None, item
        quiet(stranger, 0.5, what="a roster push for another user's roster")
        items = roster(phone)
        assert set(items) == {contact}, items
        assert items[contact]["name"] == "Contact \u00e9"
        assert items[contact]["groups"] == ["Friends", "Work"]
        assert items[contact]["subscription"] == "none"
    finally:
        for c in (desk, phone, stranger):
            c.close()


def test_update_changes_name_and_groups(server):
    """RFC 6121 2.4: add/remove groups, change or delete the handle."""
    user, contact = new_users(server, "upd", "ct")
    a = interested(server, user, "a")
    b = interested(server, user, "b")
    try:
        assert roster_set(a, contact, name="Old", groups=["G1"]).get("type") == "result"
        wait_push(a, contact)
        wait_push(b, contact)

        assert roster_set(a, contact, name="New", groups=["G1", "G2"]).get("type") == "result"
        for c in (a, b):
            item = wait_push(c, contact)
            assert (item["name"], item["groups"]) == ("New", ["G1", "G2"]), item

        # no name and no groups: handle deleted, item in no group
        assert roster_set(a, contact).get("type") == "result"
        for c in (a, b):
            item = wait_push(c, contact)
            assert item["name"] in (None, ""), item
            assert item["groups"] == [], item
        items = roster(b)
        assert items[contact]["name"] in (None, "") and items[contact]["groups"] == [], items
    finally:
        a.close()
        b.close()


def test_remove_item_pushes_remove_and_forgets_it(server):
    """RFC 6121 2.5.2: push with subscription='remove' to all interested resources."""
    user, contact, keep = new_users(server, "rem", "ct", "keep")
    a = interested(server, user, "a")
    b = interested(server, user, "b")
    try:
        for jid in (contact, keep):
            assert roster_set(a, jid, groups=["G"]).get("type") == "result"
            wait_push(a, jid)
            wait_push(b, jid)
        answer = roster_remove(b, contact)
        assert answer.get("type") == "result", rc.show(answer)
        for c in (a, b):
            item = wait_push(c, contact)
            assert item["subscription"] == "remove", item
        assert set(roster(a)) == {keep}
    finally:
        a.close()
        b.close()


def test_remove_unknown_item_is_item_not_found(server):
    """RFC 6121 2.5.3."""
    user = new_user(server, "remnf")
    c = interested(server, user)
    try:
        answer = roster_remove(c, "not-in-roster@localhost")
        assert error_of(answer)[1] == "item-not-found", rc.show(answer)
        quiet(c, 0.4, what="a roster push after a failed remove")
    finally:
        c.close()


def test_subscription_attribute_other_than_remove_is_ignored(server):
    """RFC 6121 2.1.5 rule 2: a client cannot give itself a subscription."""
    user, contact = new_users(server, "subig", "ct")
    c = interested(server, user)
    try:
        for value in ("both", "to", "from"):
            # (a new name each time: a set that changes nothing need not be pushed)
            assert roster_set(c, contact, name=value, subscription=value).get("type") == "result"
            item = wait_push(c, contact)
            assert item["subscription"] == "none", item
        # an 'ask' in a roster set is not the client's to set either
        answer = roster_set(c, contact, raw_items=f"<item jid='{contact}' name='ask' ask='subscribe'/>")
        assert answer.get("type") == "result", rc.show(answer)
        item = wait_push(c, contact)
        assert item["ask"] is None, item
        assert roster(c)[contact]["subscription"] == "none"
    finally:
        c.close()


def test_roster_persists_across_sessions(server):
    user, contact = new_users(server, "pers", "ct")
    c = interested(server, user)
    assert roster_set(c, contact, name="Kept", groups=["Saved"]).get("type") == "result"
    wait_push(c, contact)
    c.close()
    c = interested(server, user)
    try:
        items = roster(c)
        assert items[contact]["name"] == "Kept" and items[contact]["groups"] == ["Saved"], items
    finally:
        c.close()


def test_item_jid_is_compared_after_preparation(server):
    """The item is keyed by the prepared JID (RFC 7622): a second set with other case is
    an update of the same item, not a second item."""
    user, contact = new_users(server, "prep", "ct")
    c = interested(server, user)
    try:
        local, domain = contact.split("@")
        assert roster_set(c, f"{local.upper()}@{domain.upper()}", name="1").get("type") == "result"
        item = wait_push(c, contact)
        assert item["jid"] == contact, item
        assert roster_set(c, contact, name="2").get("type") == "result"
        wait_push(c, contact)
        items = roster(c)
        assert list(items) == [contact] and items[contact]["name"] == "2", items
    finally:
        c.close()


# ---------------------------------------------------------------- errors (2.3.3)

def test_two_items_is_bad_request(server):
    user, c1, c2 = new_users(server, "two", "ct", "ct")
    c = interested(server, user)
    try:
        answer = roster_set(c, None, raw_items=item_xml(c1, "One") + item_xml(c2, "Two"))
        assert error_of(answer) == ("modify", "bad-request"), rc.show(answer)
        quiet(c, 0.4, what="a roster push after a rejected set")
        assert roster(c) == {}
    finally:
        c.close()


def test_duplicate_groups_is_bad_request(server):
    user, contact = new_users(server, "dupg", "ct")
    c = interested(server, user)
    try:
        answer = roster_set(c, contact, groups=["Servants", "Servants"])
        assert error_of(answer) == ("modify", "bad-request"), rc.show(answer)
        assert roster(c) == {}
    finally:
        c.close()


def test_empty_group_is_not_acceptable(server):
    """RFC 6121 2.3.3: a <group/> of zero length -> <not-acceptable/> (not bad-request)."""
    user, contact = new_users(server, "empg", "ct")
    c = interested(server, user)
    try:
        answer = roster_set(c, contact, raw_items=f"<item jid='{contact}'><group></group></item>")
        assert error_of(answer) == ("modify", "not-acceptable"), rc.show(answer)
        answer = roster_set(c, contact, raw_items=f"<item jid='{contact}'><group/></item>")
        assert error_of(answer) == ("modify", "not-acceptable"), rc.show(answer)
        assert roster(c) == {}
    finally:
        c.close()


@pytest.mark.parametrize("items", [
    "<item jid='@@@'/>",
    "<item jid='a@b@c'/>",
    "<item jid='user@'/>",
], ids=["at-signs", "two-ats", "no-domain"])
def test_malformed_item_jid_is_rejected(server, items):
    user = new_user(server, "badjid")
    c = interested(server, user)
    try:
        answer = roster_set(c, None, raw_items=items)
        assert error_of(answer)[1] in ("jid-malformed", "bad-request"), rc.show(answer)
        assert roster(c) == {}
    finally:
        c.close()


def test_item_without_jid_is_rejected(server):
    user = new_user(server, "nojid")
    c = interested(server, user)
    try:
        answer = roster_set(c, None, raw_items="<item name='who?'/>")
        assert error_of(answer)[1] in ("bad-request", "jid-malformed"), rc.show(answer)
        assert roster(c) == {}
    finally:
        c.close()


def test_roster_set_to_another_users_bare_jid_is_forbidden(server):
    """RFC 6121 2.1.5 / 2.3.3: the server MUST verify the sender may update the roster,
    else <forbidden/> (the example has type 'auth'); the victim's roster is unchanged."""
    attacker, victim, contact = new_users(server, "mallory", "victim", "ct")
    m = interested(server, attacker)
    v = interested(server, victim)
    try:
        answer = roster_set(m, contact, name="planted", to=victim)
        assert error_of(answer) == ("auth", "forbidden"), rc.show(answer)
        answer = roster_set(m, contact, subscription="remove", to=victim)
        assert error_of(answer) == ("auth", "forbidden"), rc.show(answer)
        quiet(v, 0.5, what="a roster push caused by another user")
        assert roster(v) == {}
        assert roster(m) == {}
    finally:
        m.close()
        v.close()


def test_roster_get_for_another_users_bare_jid_reveals_nothing(server):
    """Only the account itself may read its roster: an error (forbidden, as for sets,
    or service-unavailable, RFC 6121 8.5.2.1.3), never the items."""
    snoop, victim, contact = new_users(server, "snoop", "victim", "ct")
    v = interested(server, victim)
    s = login(server, snoop)
    try:
        assert roster_set(v, contact, name="secret").get("type") == "result"
        answer = roster_get(s, to=victim)
        assert answer.get("type") == "error", f"another user's roster was returned: {rc.show(answer)}"
        assert rc.stanza_error(answer)[1] in ("forbidden", "service-unavailable"), rc.show(answer)
        assert "secret" not in rc.show(answer)
    finally:
        v.close()
        s.close()


# ---------------------------------------------------------------- versioning (2.6)

def full_roster(answer):
    query = roster_query(answer)
    assert query is not None, rc.show(answer)
    return {i["jid"]: i for i in map(item_of, query.findall(q(NS_ROSTER, "item")))}, query.get("ver")


def strip(items):
    return {j: {k: v for k, v in i.items() if k != "ver"} for j, i in items.items()}


def test_pushes_carry_unique_versions_matching_the_roster_result(server):
    """RFC 6121 2.6.3: each push carries the new version, versions are unique, and a full
    roster requested afterwards has the version of the last push."""
    user, c1, c2 = new_users(server, "vers", "ct", "ct")
    c = interested(server, user)
    try:
        _, v0 = full_roster(roster_get(c, ver=""))
        seen = [v0]
        for jid, name in ((c1, "one"), (c2, "two"), (c1, "uno")):
            assert roster_set(c, jid, name=name).get("type") == "result"
            item = wait_push(c, jid)
            assert item["ver"], f"roster push without 'ver': {item}"
            assert item["ver"] not in seen, f"roster version {item['ver']} reused: {seen}"
            seen.append(item["ver"])
        assert roster_remove(c, c2).get("type") == "result"
        item = wait_push(c, c2)
        assert item["ver"] and item["ver"] not in seen
        seen.append(item["ver"])
        items, ver = full_roster(roster_get(c))
        assert ver == seen[-1], (ver, seen)
        assert set(items) == {c1} and items[c1]["name"] == "uno"
    finally:
        c.close()


def test_current_version_gets_an_empty_result_and_no_pushes(server):
    """RFC 6121 2.6.3: with the current version the server answers with an empty IQ result
    (no <query/>) and sends no items, neither in the result nor as pushes."""
    user, c1, c2 = new_users(server, "vcur", "ct", "ct")
    c = interested(server, user)
    for jid in (c1, c2):
        assert roster_set(c, jid, groups=["G"]).get("type") == "result"
        wait_push(c, jid)
    _, ver = full_roster(roster_get(c, ver=""))
    c.close()

    c = login(server, user)
    try:
        answer = roster_get(c, ver=ver)
        assert answer.get("type") == "result", rc.show(answer)
        query = roster_query(answer)
        assert query is None or not query.findall(q(NS_ROSTER, "item")), (
            f"items resent although the client has the current version: {rc.show(answer)}")
        assert query is None, f"expected an empty IQ result (no <query/>): {rc.show(answer)}"
        quiet(c, 0.7, what="roster pushes although the client is up to date")
        # later changes still arrive as pushes
        assert roster_set(c, c1, name="later").get("type") == "result"
        item = wait_push(c, c1)
        assert item["name"] == "later" and item["ver"] not in (None, ver), item
    finally:
        c.close()


def test_old_version_is_brought_up_to_date(server):
    """RFC 6121 2.6.3: for an older version the server sends either the whole roster (with
    the current version) or an empty result and one push per item changed since; either
    way the client ends up with the current roster and version."""
    user, keep, change, drop, add = new_users(server, "vold", "keep", "chg", "drop", "add")
    c = interested(server, user)
    for jid in (keep, change, drop):
        assert roster_set(c, jid, name="v1").get("type") == "result"
        wait_push(c, jid)
    cached, old = full_roster(roster_get(c, ver=""))
    cached = strip(cached)
    assert roster_set(c, change, name="v2", groups=["New"]).get("type") == "result"
    wait_push(c, change)
    assert roster_remove(c, drop).get("type") == "result"
    wait_push(c, drop)
    assert roster_set(c, add, name="added").get("type") == "result"
    wait_push(c, add)
    current, now = full_roster(roster_get(c, ver=""))
    assert now != old
    c.close()

    c = login(server, user)
    try:
        answer = roster_get(c, ver=old)
        assert answer.get("type") == "result", rc.show(answer)
        query = roster_query(answer)
        if query is not None:          # the full roster
            items, ver = full_roster(answer)
            assert strip(items) == strip(current)
            assert ver == now
        else:                          # interim pushes
            state = dict(cached)
            ver = old
            pushed = []
            for el in collect(c, 1.0):
                if not is_roster_push(el):
                    continue
                item = check_push(c, el)
                pushed.append(item["jid"])
                ver = item.pop("ver")
                if item["subscription"] == "remove":
                    state.pop(item["jid"], None)
                else:
                    state[item["jid"]] = item
            assert state == strip(current), (state, current)
            assert ver == now, (ver, now)
            # one push per item modified since the client's version (and only those)
            assert sorted(pushed) == sorted({change, drop, add}), pushed
    finally:
        c.close()


def test_unknown_version_gets_the_full_roster(server):
    user, contact = new_users(server, "vunk", "ct")
    c = interested(server, user)
    try:
        assert roster_set(c, contact, name="n").get("type") == "result"
        wait_push(c, contact)
        answer = roster_get(c, ver="no-such-version-xyz")
        assert answer.get("type") == "result", rc.show(answer)
        if roster_query(answer) is not None:
            items, ver = full_roster(answer)
            assert set(items) == {contact} and ver, rc.show(answer)
        else:   # allowed only if the pushes then bring the whole roster
            pushed = [check_push(c, e) for e in collect(c, 1.0) if is_roster_push(e)]
            assert [p["jid"] for p in pushed] == [contact], pushed
    finally:
        c.close()
