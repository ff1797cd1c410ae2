#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_dns_answer into corpus/dns_answer/.

Each file is one DNS response message. Some were captured from dnsmasq 2.90 (the zone of
tests/unit/federation/test_dns_resolver.cpp); the others are built here by hand to reach
the parser's corners: compression pointers, CNAME chains, escapes, odd classes, errors.
Run it again after changing it; the files are checked in so the build needs no Python.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "dns_answer")


def name(text):
    if text in ("", "."):
        return b"\0"
    out = b""
    for label in text.rstrip(".").split("."):
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def header(flags=0x8180, qd=1, an=0, ns=0, ar=0, ident=0x1234):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def question(owner, qtype=33):
    return name(owner) + struct.pack(">HH", qtype, 1)


def rr(owner_wire, rtype, ttl, rdata, klass=1):
    return owner_wire + struct.pack(">HHIH", rtype, klass, ttl, len(rdata)) + rdata


def srv_rdata(priority, weight, port, target_wire):
    return struct.pack(">HHH", priority, weight, port) + target_wire


CAPTURED = {
    "dnsmasq_two_srv_with_additional": "1234858000010002000000010c5f786d70702d736572766572045f746370016104746573740000210001c00c002100010000001e00110014000014960268320161047465737400c00c002100010000001e0011000a003c14950268310161047465737400c059000100010000001e00047f000002",
    "dnsmasq_dot_target": "1234858000010001000000000c5f786d70702d736572766572045f746370046e6f6e6504746573740000210001c00c002100010000001e000700000000000100",
    "dnsmasq_nxdomain": "1234818300010000000000000c5f786d70702d736572766572045f746370027a7a04746573740000210001",
    "dnsmasq_nodata": "123481800001000000000000026831016104746573740000210001",
    "dnsmasq_refused": "123481850001000000000000046e6f7065076578616d706c650000010001",
}


def built():
    files = {}
    owner = "_xmpp-server._tcp.example.org"
    q = question(owner)
    # Targets compressed against the question name (offset 12; "example.org" at 30).
    ptr_owner = b"\xc0\x0c"
    ptr_domain = b"\xc0\x1e"
    files["compressed_targets"] = (
        header(an=3) + q
        + rr(ptr_owner, 33, 300, srv_rdata(5, 0, 5269, b"\x04xmpp" + ptr_domain))
        + rr(ptr_owner, 33, 200, srv_rdata(5, 10, 5269, b"\x05xmpp2" + ptr_domain))
        + rr(ptr_owner, 33, 100, srv_rdata(10, 0, 5270, ptr_domain))
    )
    # CNAME chain: the SRV record sits under the alias.
    cname_target = name("srv.example.net")
    answer1 = rr(ptr_owner, 5, 60, cname_target)
    alias_offset = 12 + len(q) + 12  # where cname_target starts inside answer1
    files["cname_then_srv"] = (
        header(an=2) + q + answer1
        + rr(bytes([0xC0, alias_offset]), 33, 3600, srv_rdata(0, 0, 5269, name("xmpp.example.net")))
    )
    # Direct TLS records.
    files["xmpps_records"] = (
        header(an=2) + question("_xmpps-server._tcp.example.org")
        + rr(b"\xc0\x0c", 33, 86400, srv_rdata(0, 5, 5270, name("tls1.example.org")))
        + rr(b"\xc0\x0c", 33, 86400, srv_rdata(0, 95, 5270, name("tls2.example.org")))
    )
    # Many records of mixed priorities and weights.
    body = b""
    for i in range(16):
        body += rr(b"\xc0\x0c", 33, 1000 + i, srv_rdata(i % 3, (i * 37) % 101, 5000 + i, name("h%d.example.org" % i)))
    files["sixteen_records"] = header(an=16) + q + body
    # Labels that need escaping, a non-IN SRV, an A record in the answer, a TTL with the
    # high bit set, and authority/additional sections.
    files["escapes_classes_sections"] = (
        header(an=4, ns=1, ar=1) + q
        + rr(b"\xc0\x0c", 33, 10, srv_rdata(1, 1, 1, b"\x04a.\\\x01\x07example\x00"))
        + rr(b"\xc0\x0c", 33, 10, srv_rdata(1, 1, 1, name("chaos.example.org")), klass=3)
        + rr(b"\xc0\x0c", 1, 10, b"\x7f\x00\x00\x01")
        + rr(b"\xc0\x0c", 33, 0x80000001, srv_rdata(2, 0, 5269, name("late.example.org")))
        + rr(name("example.org"), 6, 60, name("ns.example.org") + name("hostmaster.example.org") + struct.pack(">IIIII", 1, 2, 3, 4, 5))
        + rr(name("xmpp.example.org"), 28, 60, bytes(15) + b"\x01")
    )
    # Error-ish shapes that are still well formed.
    files["servfail"] = header(flags=0x8182) + q
    files["truncated_flag"] = header(flags=0x8380) + q
    files["no_question_one_answer"] = header(qd=0, an=1) + rr(name(owner), 33, 5, srv_rdata(0, 0, 5269, name("x.example.org")))
    return files


def main():
    os.makedirs(OUT, exist_ok=True)
    for key, hexdata in CAPTURED.items():
        with open(os.path.join(OUT, key + ".bin"), "wb") as f:
            f.write(bytes.fromhex(hexdata))
    for key, data in built().items():
        with open(os.path.join(OUT, key + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
