"""slixmpp (a real third-party client) against the test server.

Each test runs its own asyncio loop: run(scenario, timeout) creates it, runs the
coroutine scenario() with a deadline, disconnects every client created through
connect() and closes the loop.

Two adaptations to the test setting, neither of which changes what goes on the wire
beyond what is stated:
  * DNS: slixmpp resolves the JID's domain even when given an address; here
    get_dns_records is replaced so that it connects to 127.0.0.1:port, and the
    JID's domain is still used for SNI and the stream header.
  * Channel binding: slixmpp 1.8.3 knows only 'tls-unique' (for -PLUS it sends
    p=tls-unique with what OpenSSL reports as the first Finished message, also on
    TLS 1.3, where Herald accepts it without advertising it). For SCRAM without -PLUS it
    sends the GS2 flag "y" ("I support channel binding but think you don't") whenever
    it has that data, and a server that offers SCRAM-*-PLUS must reject "y" as a
    downgrade (RFC 5802 section 6). So when a test restricts slixmpp to a non-PLUS
    SCRAM mechanism, the helper hides the channel-binding data from it and slixmpp sends
    "n" (no channel binding), as a client without channel binding does. connect(...,
    mechanism=None) leaves slixmpp entirely alone (it then picks SCRAM-SHA-512-PLUS).
    The downgrade check itself is tested with the raw client (test_sasl.py).
"""
import asyncio
import logging
import ssl

import slixmpp

log = logging.getLogger("slixclient")


class Session:
    def __init__(self, client):
        self.client = client
        self.started = None       # future: "session" or an error string
        self.messages = asyncio.Queue()
        self.auth_failure = None  # condition of a SASL <failure/>

    @property
    def jid(self):
        return self.client.boundjid

    @property
    def mechanism(self):
        mech = self.client["feature_mechanisms"].mech
        return mech.name if mech is not None else None


_clients = []


def connect(jid, password, port, mechanism, direct_tls=False, resource=None):
    """Creates a ClientXMPP and starts connecting; await session.started."""
    loop = asyncio.get_running_loop()
    full = f"{jid}/{resource}" if resource else jid
    client = slixmpp.ClientXMPP(full, password, sasl_mech=mechanism)  # None: slixmpp picks
    client.register_plugin("xep_0199")   # ping, used to synchronise with the server
    _clients.append(client)
    session = Session(client)
    session.started = loop.create_future()
    domain = client.boundjid.domain

    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.use_ipv6 = False

    async def local_dns(_domain, _port=None):
        return [(domain, "127.0.0.1", port)]
    client.get_dns_records = local_dns

    if mechanism and mechanism.startswith("SCRAM-") and not mechanism.endswith("-PLUS"):
        mechanisms = client["feature_mechanisms"]
        default_credentials = mechanisms._default_credentials

        def credentials_without_cb(required, optional):
            creds = default_credentials(required, optional)
            creds.pop("channel_binding", None)
            return creds
        mechanisms.sasl_callback = credentials_without_cb

    def finish(result):
        if not session.started.done():
            session.started.set_result(result)

    def on_failed_auth(stanza):
        session.auth_failure = stanza["condition"]
        finish(f"failed_auth:{stanza['condition']}")

    client.add_event_handler("session_start", lambda _: finish("session"))
    client.add_event_handler("failed_auth", on_failed_auth)
    client.add_event_handler("failed_all_auth", lambda _: finish("failed_all_auth"))
    client.add_event_handler("no_auth", lambda _: finish("no_auth"))
    client.add_event_handler("connection_failed", lambda e: finish(f"connection_failed:{e}"))
    client.add_event_handler("disconnected", lambda _: finish("disconnected"))
    client.add_event_handler("stream_error", lambda e: finish(f"stream_error:{e['condition']}"))
    client.add_event_handler("message", lambda m: session.messages.put_nowait(m))

    client.connect(address=("127.0.0.1", port), use_ssl=direct_tls,
                   force_starttls=not direct_tls)
    return session


async def _disconnect_all():
    clients = list(_clients)
    _clients.clear()
    for c in clients:
        try:
            if c.transport is not None:
                await asyncio.wait_for(c.disconnect(wait=0.5), 3)
        except Exception:  # best effort: the test result is already decided
            log.debug("disconnect failed", exc_info=True)
        try:
            c.abort()
        except Exception:
            pass


def run(scenario, timeout=20):
    """Runs the coroutine function scenario() in a fresh loop, with a deadline."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(asyncio.wait_for(scenario(), timeout))
    finally:
        try:
            loop.run_until_complete(_disconnect_all())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
