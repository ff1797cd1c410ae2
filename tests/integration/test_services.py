"""Server-side services: service discovery (XEP-0030), ping (XEP-0199), software
version (XEP-0092), entity time (XEP-0202)."""
import datetime
import re

import pytest

import rawclient as rc
from flows import login
from rawclient import NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_TIME, NS_VERSION, q


@pytest.fixture(scope="module")
def alice(server):
    c = login(server, "alice@localhost", resource="svc")
    yield c
    c.close()


def result(alice, payload, to, check_addressing=True):
    answer = alice.iq("get", payload, to=to)
    assert answer.get("type") == "result", rc.show(answer)
    if check_addressing:
        # RFC 6120 8.1.2.1: on behalf of the user's own account, 'from' may be omitted
        allowed = (to, None) if to == alice.jid.split("/")[0] else (to,)
        assert answer.get("from") in allowed, rc.show(answer)
        assert answer.get("to") in (alice.jid, None), rc.show(answer)
    return answer


@pytest.mark.parametrize("host", ["localhost", "example.test"])
def test_disco_info_server(server, alice, host):
    answer = result(alice, f"<query xmlns='{NS_DISCO_INFO}'/>", host)
    query = answer.find(q(NS_DISCO_INFO, "query"))
    assert query is not None, rc.show(answer)
    identities = {(i.get("category"), i.get("type"))
                  for i in query.findall(q(NS_DISCO_INFO, "identity"))}
    assert ("server", "im") in identities, rc.show(query)
    features = {f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))}
    for ns in (NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_VERSION, NS_TIME):
        assert ns in features, f"{ns} missing from {sorted(features)}"
    vars_ = [f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))]
    assert len(vars_) == len(set(vars_)), f"duplicate features: {vars_}"


def test_disco_items_server(server, alice):
    answer = result(alice, f"<query xmlns='{NS_DISCO_ITEMS}'/>", "localhost")
    query = answer.find(q(NS_DISCO_ITEMS, "query"))
    assert query is not None, rc.show(answer)
    for item in query.findall(q(NS_DISCO_ITEMS, "item")):
        assert item.get("jid"), rc.show(item)


def test_disco_info_own_account(server, alice):
    """XEP-0030 / RFC 6121 8.5.2.1.3: the server answers for the bare JID: an
    account/registered identity."""
    answer = result(alice, f"<query xmlns='{NS_DISCO_INFO}'/>", "alice@localhost")
    query = answer.find(q(NS_DISCO_INFO, "query"))
    assert query is not None, rc.show(answer)
    identities = {(i.get("category"), i.get("type"))
                  for i in query.findall(q(NS_DISCO_INFO, "identity"))}
    assert ("account", "registered") in identities, rc.show(query)
    features = {f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))}
    assert NS_DISCO_INFO in features, rc.show(query)


def test_disco_items_own_account(server, alice):
    answer = result(alice, f"<query xmlns='{NS_DISCO_ITEMS}'/>", "alice@localhost")
    assert answer.find(q(NS_DISCO_ITEMS, "query")) is not None, rc.show(answer)


def test_disco_info_unknown_node_is_item_not_found(server, alice):
    """XEP-0030 section 7: a node the server does not know -> item-not-found."""
    answer = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='urn:herald:no-such-node'/>",
                      to="localhost")
    assert answer.get("type") == "error", rc.show(answer)
    assert rc.stanza_error(answer) == ("cancel", "item-not-found"), rc.show(answer)


def test_disco_set_is_rejected(server, alice):
    """disco is get-only: a set is not served (service-unavailable or bad-request)."""
    answer = alice.iq("set", f"<query xmlns='{NS_DISCO_INFO}'/>", to="localhost")
    assert answer.get("type") == "error", rc.show(answer)
    assert rc.stanza_error(answer)[1] in ("service-unavailable", "bad-request",
                                          "feature-not-implemented", "not-allowed"), rc.show(answer)


def test_ping_server(server, alice):
    """XEP-0199 4.2: the pong is an empty IQ result."""
    answer = result(alice, f"<ping xmlns='{NS_PING}'/>", "localhost")
    assert len(answer) == 0, rc.show(answer)


def test_ping_second_host(server, alice):
    answer = result(alice, f"<ping xmlns='{NS_PING}'/>", "example.test")
    assert len(answer) == 0, rc.show(answer)


def test_version(server, alice):
    """XEP-0092: name and version, both non-empty."""
    answer = result(alice, f"<query xmlns='{NS_VERSION}'/>", "localhost")
    query = answer.find(q(NS_VERSION, "query"))
    assert query is not None, rc.show(answer)
    assert (query.findtext(q(NS_VERSION, "name")) or "").strip(), rc.show(query)
    assert (query.findtext(q(NS_VERSION, "version")) or "").strip(), rc.show(query)


def test_time(server, alice):
    """XEP-0202: <tzo/> as [+-]hh:mm or Z, <utc/> as an XEP-0082 DateTime in UTC, close
    to our clock."""
    answer = result(alice, f"<time xmlns='{NS_TIME}'/>", "localhost")
    t = answer.find(q(NS_TIME, "time"))
    assert t is not None, rc.show(answer)
    tzo = t.findtext(q(NS_TIME, "tzo")) or ""
    utc = t.findtext(q(NS_TIME, "utc")) or ""
    assert re.fullmatch(r"Z|[+-]\d\d:\d\d", tzo), rc.show(t)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", utc)
    assert m, rc.show(t)
    server_time = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    drift = abs((datetime.datetime.now(datetime.timezone.utc) - server_time).total_seconds())
    assert drift < 30, f"server time {utc} is {drift:.0f}s off"


@pytest.mark.parametrize("payload", [f"<query xmlns='{NS_VERSION}'/>", f"<time xmlns='{NS_TIME}'/>",
                                     f"<ping xmlns='{NS_PING}'/>"])
def test_get_only_services_reject_set(server, alice, payload):
    answer = alice.iq("set", payload, to="localhost")
    assert answer.get("type") == "error", rc.show(answer)
    assert rc.stanza_error(answer)[0] in ("cancel", "modify"), rc.show(answer)
