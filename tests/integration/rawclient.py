"""A small blocking XMPP client over a raw socket, for tests that need to send exactly
the bytes they want and see exactly what comes back: stream headers, STARTTLS, direct
TLS, SASL PLAIN and SCRAM (SHA-1/256/512, -PLUS with tls-server-end-point), binding.

Incoming data goes through an incremental parser (xml.etree XMLPullParser); every
complete top-level element (a child of <stream:stream>) is queued, the stream header is
kept in .header, the server's </stream:stream> sets .stream_ended and TCP EOF sets .eof.
"""
import base64
import hashlib
import hmac
import itertools
import os
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections import deque
from xml.sax.saxutils import escape, quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STREAM_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERR = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PING = "urn:xmpp:ping"
NS_VERSION = "jabber:iq:version"
NS_TIME = "urn:xmpp:time"

DEFAULT_TIMEOUT = 5.0
_ids = itertools.count(1)


def q(ns, name):
    return f"{{{ns}}}{name}"


def new_id(prefix="t"):
    return f"{prefix}{next(_ids)}"


def show(elem):
    """Serialized element for assertion messages."""
    if elem is None:
        return "None"
    try:
        return ET.tostring(elem, encoding="unicode")
    except Exception:  # pragma: no cover - diagnostics only
        return repr(elem)


class StreamClosed(Exception):
    pass


class Timeout(AssertionError):
    pass


def client_tls_context(min_version=None, max_version=None, alpn=None):
    """A client context that accepts the test's self-signed certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if min_version is not None or max_version is not None:
        # Old protocol versions need the lowest security level on Debian's OpenSSL 3.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


# ------------------------------------------------------------------ channel binding

_SIG_HASH = {  # signatureAlgorithm OID -> hash name (RFC 5929 section 4.1)
    "1.2.840.113549.1.1.4": "md5", "1.2.840.113549.1.1.5": "sha1",
    "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512", "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256", "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}


def _der(buf, pos):
    """(tag, content_start, content_end) of the DER TLV at pos."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _oid(data):
    arcs = [data[0] // 40, data[0] % 40]
    v = 0
    for b in data[1:]:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    return ".".join(map(str, arcs))


def cert_signature_oid(der):
    _, start, _ = _der(der, 0)             # Certificate SEQUENCE
    _, _, tbs_end = _der(der, start)        # tbsCertificate
    _, alg_start, _ = _der(der, tbs_end)    # signatureAlgorithm SEQUENCE
    tag, oid_start, oid_end = _der(der, alg_start)
    assert tag == 0x06, "signatureAlgorithm does not start with an OID"
    return _oid(der[oid_start:oid_end])


def tls_server_end_point(der):
    """RFC 5929 section 4.1: hash of the server certificate; MD5 and SHA-1 become SHA-256."""
    oid = cert_signature_oid(der)
    name = _SIG_HASH.get(oid)
    if name is None:
        raise ValueError(f"tls-server-end-point undefined for signature algorithm {oid}")
    if name in ("md5", "sha1"):
        name = "sha256"
    return hashlib.new(name, der).digest()


# ------------------------------------------------------------------ SCRAM

_SCRAM_HASH = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def _saslname(s):
    return s.replace("=", "=3D").replace(",", "=2C")


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def _parse_attrs(msg):
    out = {}
    for part in msg.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


class Scram:
    """Client side of RFC 5802. gs2 overrides the GS2 header ("n,,", "y,,",
    "p=tls-server-end-point,,", ...); cb_data overrides the channel-binding bytes."""

    def __init__(self, mechanism, username, password, cb_data=None, gs2=None):
        plus = mechanism.endswith("-PLUS")
        base = mechanism[:-5] if plus else mechanism
        self.hash = _SCRAM_HASH[base]
        self.username, self.password = username, password
        self.gs2 = gs2 if gs2 is not None else ("p=tls-server-end-point,," if plus else "n,,")
        self.cb_data = cb_data if (cb_data is not None and self.gs2.startswith("p=")) else b""
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.server_signature = None

    def first(self):
        self.client_first_bare = f"n={_saslname(self.username)},r={self.nonce}"
        return (self.gs2 + self.client_first_bare).encode()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = _parse_attrs(server_first)
        if not attrs.get("r", "").startswith(self.nonce):
            raise AssertionError(f"server nonce does not extend ours: {server_first}")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        cbind = base64.b64encode(self.gs2.encode() + self.cb_data).decode()
        without_proof = f"c={cbind},r={attrs['r']}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored_key = hashlib.new(self.hash, client_key).digest()
        signature = hmac.new(stored_key, auth_message, self.hash).digest()
        proof = base64.b64encode(_xor(client_key, signature)).decode()
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        self.server_signature = hmac.new(server_key, auth_message, self.hash).digest()
        return f"{without_proof},p={proof}".encode()

    def verify(self, server_final):
        attrs = _parse_attrs(server_final.decode())
        if "v" not in attrs:
            raise AssertionError(f"SCRAM server-final without v=: {server_final!r}")
        if base64.b64decode(attrs["v"]) != self.server_signature:
            raise AssertionError("SCRAM server signature does not verify")


# ------------------------------------------------------------------ the client

class Client:
    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, direct_tls=False,
                 server_hostname="localhost", source_address=None, tls_context=None,
                 rcvbuf=None):
        self.timeout = timeout
        if rcvbuf is None:
            self.sock = socket.create_connection((host, port), timeout=timeout,
                                                 source_address=source_address)
        else:   # a small receive window, set before connecting (slow-reader tests)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            if source_address:
                self.sock.bind(source_address)
            self.sock.connect((host, port))
        self.tls = False
        self.peer_cert = None
        self.jid = None
        self.transcript = []
        self.pending = deque()
        self.skipped = []
        self.eof = False
        self.stream_ended = False
        self.header = None
        self.headers_seen = 0
        self.features = None
        self._reset_parser()
        if direct_tls:
            self.wrap_tls(server_hostname, tls_context or client_tls_context(alpn=["xmpp-client"]))

    # -- plumbing
    def _reset_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root = None
        self.header = None
        self.header_tag = None
        self.stream_ended = False

    def wrap_tls(self, server_hostname, ctx=None):
        ctx = ctx or client_tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.tls = True
        self.peer_cert = self.sock.getpeercert(binary_form=True)
        self.transcript.append(f"-- TLS {self.sock.version()} established")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append("C: " + data.decode("utf-8", "replace")[:2000])
        self.sock.settimeout(self.timeout)  # reads leave their own (short) deadline behind
        self.sock.sendall(data)

    def _feed(self, data):
        self.transcript.append("S: " + data.decode("utf-8", "replace")[:2000])
        try:
            self.parser.feed(data)
            events = list(self.parser.read_events())
        except ET.ParseError as e:
            if self.stream_ended:   # bytes after the end of the document: not ours to judge
                self.transcript.append(f"-- data after the end of the stream ignored: {e}")
                return
            if self.header is None:
                raise AssertionError(
                    f"server sent data before opening its stream ({e}); every stream, "
                    f"restarted ones included, starts with <stream:stream> (RFC 6120 4.2, "
                    f"4.3.3, 4.9.1.2):\n{self.dump()}") from None
            raise AssertionError(f"server sent malformed XML ({e}):\n{self.dump()}") from None
        for event, elem in events:
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = elem
                    self.header = dict(elem.attrib)
                    self.header_tag = elem.tag
                    self.headers_seen += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(elem)
                    self.root.remove(elem)
                elif self.depth == 0:
                    if elem.tag != q(NS_STREAM, "stream"):
                        # a lone element instead of a stream (e.g. <stream:error/> without
                        # an opening <stream:stream>): queue it so tests can say so
                        self.pending.append(elem)
                    self.stream_ended = True

    def _read(self, deadline):
        """Reads once; returns False on timeout. Sets .eof on a closed connection."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        except ssl.SSLError as e:
            self.transcript.append(f"-- TLS error {e}")
            data = b""
        if not data:
            self.eof = True
            self.transcript.append("-- connection closed by server")
            return True
        self._feed(data)
        return True

    def drain(self):
        """Reads whatever has arrived, without waiting, and discards it."""
        while self._read(time.monotonic() + 0.001):
            self.pending.clear()
            if self.eof:
                break
        self.pending.clear()

    def dump(self):
        return "\n".join(self.transcript[-40:])

    # -- reading
    def next(self, timeout=None):
        """The next top-level element. Raises StreamClosed / Timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.pending:
            if self.stream_ended or self.eof:
                raise StreamClosed(f"stream closed while waiting for an element:\n{self.dump()}")
            if not self._read(deadline) and time.monotonic() >= deadline:
                raise Timeout(f"nothing received within the timeout:\n{self.dump()}")
        return self.pending.popleft()

    def wait_for(self, pred, timeout=None, what="a matching element"):
        """The first element satisfying pred; others are kept in .skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            try:
                el = self.next(max(remaining, 0.001))
            except Timeout:
                raise Timeout(f"no {what} within the timeout:\n{self.dump()}") from None
            except StreamClosed:
                raise StreamClosed(f"stream closed while waiting for {what}:\n{self.dump()}") from None
            if pred(el):
                return el
            self.skipped.append(el)

    def expect_nothing(self, duration=0.7, ignore=lambda el: False):
        """Asserts that no element (except ignored ones) arrives within duration."""
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                el = self.next(remaining)
            except Timeout:
                return
            if not ignore(el):
                raise AssertionError(f"unexpected element: {show(el)}\n{self.dump()}")

    def wait_header(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self.header is None:
            if self.eof:
                raise StreamClosed(f"closed before the stream header:\n{self.dump()}")
            if not self._read(deadline) and time.monotonic() >= deadline:
                raise Timeout(f"no stream header:\n{self.dump()}")
        return self.header

    def wait_closed(self, timeout=5.0):
        """Waits for the server to close TCP (answering its </stream:stream> with ours,
        as RFC 6120 section 4.4 expects). Returns True when closed in time."""
        sent_close = False
        deadline = time.monotonic() + timeout
        while not self.eof:
            if self.stream_ended and not sent_close:
                sent_close = True
                try:
                    self.send("</stream:stream>")
                except OSError:
                    pass
            if not self._read(deadline) and time.monotonic() >= deadline:
                return False
            while self.pending:
                self.skipped.append(self.pending.popleft())
        return True

    def expect_stream_error(self, condition, timeout=None):
        """Asserts a <stream:error/> with the given condition (a name or a set of
        acceptable names), then </stream:stream>, then the TCP connection closed.
        Returns the condition name."""
        accepted = {condition} if isinstance(condition, str) else set(condition)
        try:
            err = self.wait_for(lambda e: e.tag == q(NS_STREAM, "error"), timeout,
                                what=f"<stream:error><{'|'.join(sorted(accepted))}/>")
        except StreamClosed:
            raise AssertionError(f"stream closed without a stream error "
                                 f"(expected {sorted(accepted)}):\n{self.dump()}") from None
        assert self.header_tag == q(NS_STREAM, "stream"), (
            f"stream error without an opening <stream:stream> from the server "
            f"(RFC 6120 4.9.1.2):\n{self.dump()}")
        names = [c.tag.split("}", 1)[1] for c in err if c.tag.startswith("{" + NS_STREAM_ERR)
                 and not c.tag.endswith("}text")]
        assert len(names) == 1, f"stream error without exactly one condition: {show(err)}"
        assert names[0] in accepted, (
            f"stream error <{names[0]}/>, expected {sorted(accepted)}:\n{self.dump()}")
        self.expect_closed()
        return names[0]

    def expect_closed(self, timeout=5.0):
        closed = self.wait_closed(timeout)
        assert self.stream_ended, f"server did not send </stream:stream>:\n{self.dump()}"
        assert closed, f"server did not close the TCP connection within {timeout}s:\n{self.dump()}"

    def close(self):
        try:
            if not self.eof:
                self.send("</stream:stream>")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # -- stream
    def open_stream(self, to="localhost", version="1.0", xmlns=NS_CLIENT,
                    stream_ns=NS_STREAM, xml_decl=True, extra="", wait_features=True):
        """Sends a stream header (new parser first) and returns the features element."""
        self._reset_parser()
        attrs = f" to={quoteattr(to)}" if to is not None else ""
        if version is not None:
            attrs += f" version={quoteattr(version)}"
        decl = "<?xml version='1.0'?>" if xml_decl else ""
        self.send(f"{decl}<stream:stream{attrs} xml:lang='en' xmlns={quoteattr(xmlns)} "
                  f"xmlns:stream={quoteattr(stream_ns)}{extra}>")
        if not wait_features:
            return None
        self.wait_header()
        self.features = self.wait_for(lambda e: e.tag == q(NS_STREAM, "features"),
                                      what="<stream:features/>")
        return self.features

    def feature(self, ns, name):
        return None if self.features is None else self.features.find(q(ns, name))

    def mechanisms(self):
        mechs = self.feature(NS_SASL, "mechanisms")
        return [] if mechs is None else [m.text for m in mechs.findall(q(NS_SASL, "mechanism"))]

    def starttls(self, server_hostname="localhost", ctx=None, to=None):
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        el = self.next()
        assert el.tag == q(NS_TLS, "proceed"), f"expected <proceed/>, got {show(el)}"
        self.wrap_tls(server_hostname, ctx)
        return self.open_stream(to=to or server_hostname)

    # -- SASL
    def sasl_result(self, timeout=None):
        el = self.wait_for(lambda e: e.tag.startswith("{" + NS_SASL + "}"), timeout,
                           what="a SASL element")
        return el

    def auth_plain(self, username, password, authzid="", raw=None):
        payload = raw if raw is not None else base64.b64encode(
            f"{authzid}\0{username}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>")
        return self.sasl_result()

    def auth_scram(self, mechanism, username, password, gs2=None, cb_data=None):
        """Runs a SCRAM exchange; returns the final <success/> or <failure/>. On success
        the server signature is verified (an AssertionError otherwise)."""
        if cb_data is None and mechanism.endswith("-PLUS"):
            cb_data = tls_server_end_point(self.peer_cert)
        s = Scram(mechanism, username, password, cb_data=cb_data, gs2=gs2)
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>"
                  f"{base64.b64encode(s.first()).decode()}</auth>")
        el = self.sasl_result()
        if el.tag != q(NS_SASL, "challenge"):
            return el
        self.send(f"<response xmlns='{NS_SASL}'>"
                  f"{base64.b64encode(s.final(base64.b64decode(el.text or ''))).decode()}"
                  f"</response>")
        el = self.sasl_result()
        if el.tag == q(NS_SASL, "challenge"):      # server-final as a challenge
            s.verify(base64.b64decode(el.text or ""))
            self.send(f"<response xmlns='{NS_SASL}'/>")
            el = self.sasl_result()
        elif el.tag == q(NS_SASL, "success"):
            s.verify(base64.b64decode(el.text or ""))
        return el

    # -- binding and stanzas
    def bind(self, resource=None):
        """Binds; returns the <iq/> answer."""
        inner = f"<resource>{escape(resource)}</resource>" if resource is not None else ""
        return self.iq("set", f"<bind xmlns='{NS_BIND}'>{inner}</bind>", to=None)

    def iq(self, type_, payload, to=None, id=None, timeout=None, from_=None):
        """Sends an IQ and returns the answer with the same id."""
        id = id or new_id("iq")
        attrs = f" to={quoteattr(to)}" if to else ""
        if from_:
            attrs += f" from={quoteattr(from_)}"
        self.send(f"<iq type='{type_}' id='{id}'{attrs}>{payload}</iq>")
        return self.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == id,
                             timeout, what=f"an answer to iq {id}")

    def sync(self, domain=None):
        """A ping round trip to the server: everything sent before it has been processed
        by this session's worker when the pong arrives."""
        domain = domain or (self.jid.split("@")[-1].split("/")[0] if self.jid else "localhost")
        answer = self.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=domain)
        assert answer.get("type") == "result", f"ping failed: {show(answer)}"

    def send_presence(self, payload=""):
        """Initial presence, then a sync so that the server has made us available
        before the caller goes on."""
        self.send(f"<presence>{payload}</presence>" if payload else "<presence/>")
        self.sync()

    def message(self, to, body, type_="chat", id=None, extra="", from_=None):
        id = id or new_id("m")
        attrs = f" from={quoteattr(from_)}" if from_ else ""
        self.send(f"<message to={quoteattr(to)} type='{type_}' id='{id}'{attrs}>"
                  f"<body>{escape(body)}</body>{extra}</message>")
        return id

    def wait_message(self, body=None, timeout=None):
        def pred(e):
            if e.tag != q(NS_CLIENT, "message"):
                return False
            return body is None or e.findtext(q(NS_CLIENT, "body")) == body
        return self.wait_for(pred, timeout, what=f"a message {body!r}")


# ------------------------------------------------------------------ helpers

def stanza_error(el):
    """(type, condition) of a stanza error, or None."""
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        return None
    conds = [c.tag.split("}", 1)[1] for c in err
             if c.tag.startswith("{" + NS_STANZA_ERR) and not c.tag.endswith("}text")]
    return err.get("type"), (conds[0] if conds else None)


def sasl_condition(el):
    """The condition name of a SASL <failure/>."""
    conds = [c.tag.split("}", 1)[1] for c in el if c.tag != q(NS_SASL, "text")]
    return conds[0] if conds else None


def connect_tls(port, domain="localhost", timeout=DEFAULT_TIMEOUT, **kw):
    """Connected, STARTTLS done, features of the secured stream read."""
    c = Client(port, timeout=timeout, **kw)
    c.open_stream(to=domain)
    c.starttls(server_hostname=domain)
    return c


def login(port, user, password, domain="localhost", resource=None, mechanism="PLAIN",
          direct_tls=False, presence=False, timeout=DEFAULT_TIMEOUT, source_address=None,
          rcvbuf=None, host="127.0.0.1"):
    """A fully negotiated session: TLS, SASL, restart, bind (and initial presence)."""
    c = Client(port, host=host, timeout=timeout, direct_tls=direct_tls, server_hostname=domain,
               source_address=source_address, rcvbuf=rcvbuf)
    c.open_stream(to=domain)
    if not direct_tls:
        c.starttls(server_hostname=domain)
    if mechanism == "PLAIN":
        res = c.auth_plain(user, password)
    else:
        res = c.auth_scram(mechanism, user, password)
    assert res.tag == q(NS_SASL, "success"), f"{user}: authentication failed: {show(res)}"
    c.open_stream(to=domain)
    assert c.feature(NS_BIND, "bind") is not None, f"no <bind/> feature: {show(c.features)}"
    answer = c.bind(resource)
    assert answer.get("type") == "result", f"bind failed: {show(answer)}"
    c.jid = answer.findtext(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}")
    assert c.jid, f"bind result without a JID: {show(answer)}"
    if presence:
        c.send_presence()
    return c
