#!/usr/bin/env python3
"""Writes the OpenSSL half of consentry's TLS corpus (issue 7): the TLS 1.2 (and 1.1/1.0)
suites rustls cannot make -- AES-CBC with and without encrypt-then-MAC, RSA key
exchange, DHE, extended master secret off -- as real OpenSSL connections run in memory
through Python's ssl module (MemoryBIO + SSLObject, no sockets).

Outputs, next to this script:
  openssl.pcap         the TLS connections (Ethernet/IPv4/TCP, port 443)
  openssl.keylog       their NSS key log (SSLContext.keylog_filename of the client)
  openssl-plain.pcap   the plaintext twin: the same HTTP/1.1 bytes at the same times
                       over cleartext TCP (port 80), so both give the same findings

The identifiers are those of captures/tls/consentry.toml (device 192.168.50.23); the
case file is shared with the rustls corpus. Each connection carries two keep-alive
HTTP/1.1 requests after the refusal in that case file (10:00:05.5Z), so each one
gives findings. The script asserts, from the ServerHello bytes, that every connection
negotiated what it claims (version, suite, encrypt-then-MAC, extended master secret,
resumption) and prints one line per connection.

Not deterministic: OpenSSL draws fresh randoms and keys, and the certificates (an RSA
and an ECDSA one, self-signed, made with the `openssl` command in a temporary
directory) are new on every run; tests read the committed output. Needs python3
(stdlib only) and the openssl command. Run: python3 captures/tls/make_openssl_tls.py
"""
import os
import warnings
import ssl
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_SECS = 1_795_860_000 + 100  # 2026-11-28T10:01:40Z, after the rustls corpus
MSS = 1400
DEVICE_IP = bytes([192, 168, 50, 23])
DEVICE_MAC = bytes([0x02, 0, 0, 0x44, 0x55, 0x66])
GATEWAY_MAC = bytes([0x02, 0, 0, 0, 0, 0x01])

# OpenSSL 3 option bits (include/openssl/ssl.h.in, SSL_OP_BIT(n)).
OP_NO_EXTENDED_MASTER_SECRET = 1 << 0
OP_NO_TICKET = 1 << 14
OP_NO_ENCRYPT_THEN_MAC = 1 << 19

ADVERTISING_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"
ANDROID_ID = "9774d56d682e549c"
IMEI = "490154203237518"
OAID = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
EMAIL = "tester@example.org"
PHONE = "+8613800138000"

# host, server address, certificate ("rsa"|"ecdsa"), OpenSSL cipher name, version,
# encrypt-then-MAC, extended master secret, resume the previous connection's session.
V12, V11, V10 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1
CONNS = [
    ("app-measurement.com", 30, "rsa", "ECDHE-RSA-AES128-SHA", V12, True, True, False),
    ("app-measurement.com", 31, "rsa", "ECDHE-RSA-AES128-SHA", V12, False, True, False),
    ("graph.facebook.com", 32, "ecdsa", "ECDHE-ECDSA-AES256-SHA", V12, True, True, False),
    ("graph.facebook.com", 33, "ecdsa", "ECDHE-ECDSA-AES256-SHA", V12, False, True, False),
    ("api.mixpanel.com", 34, "rsa", "ECDHE-RSA-AES128-SHA256", V12, True, True, False),
    ("api.mixpanel.com", 35, "ecdsa", "ECDHE-ECDSA-AES128-SHA256", V12, False, True, False),
    ("t.appsflyer.com", 36, "rsa", "ECDHE-RSA-AES256-SHA384", V12, True, True, False),
    ("t.appsflyer.com", 37, "ecdsa", "ECDHE-ECDSA-AES256-SHA384", V12, False, False, False),
    ("ads.adjust.com", 38, "rsa", "AES128-GCM-SHA256", V12, True, True, False),
    ("ads.adjust.com", 39, "rsa", "AES256-SHA256", V12, True, False, False),
    ("ads.adjust.com", 40, "rsa", "AES256-SHA256", V12, False, True, False),
    ("sdk.umeng.com", 41, "rsa", "DHE-RSA-AES128-GCM-SHA256", V12, True, True, False),
    ("sdk.umeng.com", 42, "rsa", "ECDHE-RSA-AES256-GCM-SHA384", V12, True, False, False),
    ("sdk.umeng.com", 42, "rsa", "ECDHE-RSA-AES256-GCM-SHA384", V12, True, False, True),
    ("app-measurement.com", 43, "rsa", "ECDHE-RSA-AES128-SHA", V12, True, True, False),
    ("app-measurement.com", 43, "rsa", "ECDHE-RSA-AES128-SHA", V12, True, True, True),
    ("legacy.example-shop.com", 44, "rsa", "ECDHE-RSA-AES128-SHA", V11, True, True, False),
    ("legacy.example-shop.com", 45, "rsa", "AES256-SHA", V10, False, True, False),
]


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def make_certs(tmp):
    """An RSA and an ECDSA self-signed certificate, and DH parameters (ffdhe2048)."""
    subj = ["-subj", "/CN=consentry test server", "-days", "30", "-nodes", "-x509"]
    rsa = (os.path.join(tmp, "rsa.pem"), os.path.join(tmp, "rsa.key"))
    run("openssl", "req", "-newkey", "rsa:2048", "-keyout", rsa[1], "-out", rsa[0], *subj)
    ec = (os.path.join(tmp, "ec.pem"), os.path.join(tmp, "ec.key"))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-keyout", ec[1], "-out", ec[0], *subj)
    dh = os.path.join(tmp, "dh.pem")
    run("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
        "group:ffdhe2048", "-out", dh)
    return {"rsa": rsa, "ecdsa": ec}, dh


def contexts(cert, dh, cipher, version, etm, ems, keylog):
    opts = OP_NO_TICKET  # resumption by session id only
    if not etm:
        opts |= OP_NO_ENCRYPT_THEN_MAC
    if not ems:
        opts |= OP_NO_EXTENDED_MASTER_SECRET
    ciphers = cipher + ":@SECLEVEL=0"
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*cert)
    server.load_dh_params(dh)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.keylog_filename = keylog
    for ctx in (server, client):
        ctx.minimum_version = version
        ctx.maximum_version = version
        ctx.set_ciphers(ciphers)
        ctx.options |= opts
    return client, server


def pump(src_bio, dst_bio):
    data = src_bio.read()
    if data:
        dst_bio.write(data)
    return data


def handshake(client, server, c_out, s_in, s_out, c_in):
    """Runs the handshake; returns the flights as (from_client, bytes)."""
    flights = []
    done_c = done_s = False
    for _ in range(20):
        if not done_c:
            try:
                client.do_handshake()
                done_c = True
            except ssl.SSLWantReadError:
                pass
        up = pump(c_out, s_in)
        if up:
            flights.append((True, up))
        if not done_s:
            try:
                server.do_handshake()
                done_s = True
            except ssl.SSLWantReadError:
                pass
        down = pump(s_out, c_in)
        if down:
            flights.append((False, down))
        if done_c and done_s and not up and not down:
            return flights
    raise AssertionError("handshake did not finish")


def read_all(obj):
    out = b""
    while True:
        try:
            chunk = obj.read(65536)
        except ssl.SSLWantReadError:
            return out
        if not chunk:
            return out
        out += chunk


def server_hello(flights):
    """(version, suite, extension types) of the ServerHello in the server's first flight."""
    data = next(b for c, b in flights if not c)
    assert data[0] == 22, "handshake record"
    body = data[5:]
    assert body[0] == 2, "ServerHello"
    p = 4
    version = struct.unpack(">H", body[p:p + 2])[0]
    p += 2 + 32
    sid_len = body[p]
    p += 1 + sid_len
    suite = struct.unpack(">H", body[p:p + 2])[0]
    p += 3
    exts = set()
    hs_len = int.from_bytes(body[1:4], "big")
    if p + 2 <= 4 + hs_len:
        end = p + 2 + struct.unpack(">H", body[p:p + 2])[0]
        p += 2
        while p + 4 <= end:
            kind, n = struct.unpack(">HH", body[p:p + 4])
            exts.add(kind)
            p += 4 + n
    return version, suite, exts


def requests(host, n):
    """Two HTTP/1.1 keep-alive requests carrying identifiers."""
    body = ('{"adid":"%s","android_id":"%s","imei":"%s","conn":%d}'
            % (ADVERTISING_ID, ANDROID_ID, IMEI, n)).encode()
    first = (f"POST /v1/collect?oaid={OAID} HTTP/1.1\r\nHost: {host}\r\n"
             f"User-Agent: ExampleShop/4.2 (Android 14)\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    second = (f"GET /v1/profile?email={EMAIL}&phone=%2B8613800138000&n={n} HTTP/1.1\r\n"
              f"Host: {host}\r\nUser-Agent: ExampleShop/4.2 (Android 14)\r\n\r\n").encode()
    assert PHONE == "+8613800138000"
    return [first, second]


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def tls13_conversation(packets, certs, dh, keylog, sni, client, server, steps, ts):
    """One in-memory TLS 1.3 connection (OpenSSL's first suite) from `client` to
    `server` ((address bytes, port) each), opened at `ts` µs: the handshake's flights
    1 ms apart, then `steps` ((from_client, plaintext), each checked to arrive whole)
    20 ms apart, then closed. The key log gains its secrets. Returns the client's
    SSLObject and the time of its last step."""
    client_ctx, server_ctx = contexts(certs["rsa"], dh, "ECDHE-RSA-AES128-GCM-SHA256",
                                      ssl.TLSVersion.TLSv1_3, True, True, keylog)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=sni)
    tls_server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    flights = handshake(tls_client, tls_server, c_out, s_in, s_out, c_in)
    conv = Tcp(client, server, packets)
    conv.open(ts)
    ts += 1_000
    for from_client, data in flights:
        conv.data(from_client, data, ts)
        ts += 1_000
    for from_client, data in steps:
        ts += 20_000
        (tls_client if from_client else tls_server).write(data)
        sent = pump(c_out, s_in) if from_client else pump(s_out, c_in)
        conv.data(from_client, sent, ts)
        assert read_all(tls_server if from_client else tls_client) == data
    conv.close(ts + 1_000)
    return tls_client, ts


def plain_hello(packets, client, server, ts):
    """A cleartext TCP connection opened at `ts` µs in an SDK's own protocol, with
    nothing personal: a greeting line and its answer."""
    plain = Tcp(client, server, packets)
    plain.open(ts)
    plain.data(True, b"HELLO v=2 sdk=4.1\r\n", ts + 1_000)
    plain.data(False, b"OK\r\n", ts + 2_000)
    plain.close(ts + 3_000)


# --- packets ---------------------------------------------------------------------

def checksum(data, initial=0):
    if len(data) % 2:
        data += b"\0"
    s = initial + sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(from_device, src, dst, seq, ack, flags, payload):
    tcp = struct.pack(">HHIIBBHHH", src[1], dst[1], seq, ack if flags & 0x10 else 0,
                      0x50, flags, 0xFFFF, 0, 0) + payload
    pseudo = checksum(src[0] + dst[0] + struct.pack(">BBH", 0, 6, len(tcp)))
    c = checksum(tcp, (~pseudo) & 0xFFFF)
    tcp = tcp[:16] + struct.pack(">H", c) + tcp[18:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     src[0], dst[0])
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    smac, dmac = (DEVICE_MAC, GATEWAY_MAC) if from_device else (GATEWAY_MAC, DEVICE_MAC)
    return dmac + smac + b"\x08\x00" + ip + tcp


class Tcp:
    def __init__(self, client, server, out):
        self.c, self.s, self.out = client, server, out
        self.cseq = (0x10000000 + client[1] * 7919) & 0xFFFFFFFF
        self.sseq = (0x50000000 + client[1] * 104729) & 0xFFFFFFFF

    def seg(self, from_client, flags, payload, ts):
        src, dst, seq, ack = ((self.c, self.s, self.cseq, self.sseq) if from_client
                              else (self.s, self.c, self.sseq, self.cseq))
        self.out.append((ts, tcp_frame(from_client, src, dst, seq, ack, flags, payload)))
        used = len(payload) + (1 if flags & 0x03 else 0)
        if from_client:
            self.cseq = (self.cseq + used) & 0xFFFFFFFF
        else:
            self.sseq = (self.sseq + used) & 0xFFFFFFFF

    def open(self, ts):
        self.seg(True, 0x02, b"", ts)
        self.seg(False, 0x12, b"", ts + 200)
        self.seg(True, 0x10, b"", ts + 400)

    def data(self, from_client, data, ts):
        for i in range(0, len(data), MSS):
            self.seg(from_client, 0x18, data[i:i + MSS], ts + i // MSS)

    def close(self, ts):
        self.seg(True, 0x11, b"", ts)
        self.seg(False, 0x11, b"", ts + 200)
        self.seg(True, 0x10, b"", ts + 400)


def write_pcap(path, packets):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in sorted(packets, key=lambda p: p[0]):
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame),
                                len(frame)))
            f.write(frame)


# --- the run -----------------------------------------------------------------------

def main():
    warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
    keylog = os.path.join(HERE, "openssl.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    tls_packets, plain_packets = [], []
    with tempfile.TemporaryDirectory() as tmp:
        certs, dh = make_certs(tmp)
        prev = None  # (server ctx, client ctx, session) of the previous connection
        for i, (host, last, cert, cipher, version, etm, ems, resume) in enumerate(CONNS):
            if resume:
                client_ctx, server_ctx, session = prev
            else:
                client_ctx, server_ctx = contexts(certs[cert], dh, cipher, version, etm,
                                                  ems, keylog)
                session = None
            c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
            client = client_ctx.wrap_bio(c_in, c_out, server_side=False,
                                         server_hostname=host, session=session)
            server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
            flights = handshake(client, server, c_out, s_in, s_out, c_in)
            ver, suite, exts = server_hello(flights)
            assert client.cipher()[0] == cipher, (client.cipher(), cipher)
            assert client.session_reused == resume, (host, client.session_reused)
            want_ver = {V12: 0x0303, V11: 0x0302, V10: 0x0301}[version]
            assert ver == want_ver, hex(ver)
            has_etm, has_ems = 0x16 in exts, 0x17 in exts
            aead = "GCM" in cipher
            assert has_ems == ems, (host, cipher, "EMS", exts)
            if not aead:
                assert has_etm == etm, (host, cipher, "ETM", exts)
            flags = f"etm={'on' if has_etm else 'off'} " if not aead else ""
            print(f"{host} 203.0.113.{last} {client.version()} {cipher} (0x{suite:04x}) "
                  f"{flags}ems={'on' if has_ems else 'off'} resumed={client.session_reused}")

            start = (BASE_SECS + i) * 1_000_000
            port = 41_000 + i
            server_addr = bytes([203, 0, 113, last])
            conv = Tcp((DEVICE_IP, port), (server_addr, 443), tls_packets)
            conv.open(start)
            ts = start + 1_000
            for from_client, data in flights:
                conv.data(from_client, data, ts)
                ts += 1_000
            twin = Tcp((DEVICE_IP, port), (server_addr, 80), plain_packets)
            twin.open(start)
            for n, req in enumerate(requests(host, i)):
                at = start + 100_000 * (n + 1)
                client.write(req)
                conv.data(True, pump(c_out, s_in), at)
                assert read_all(server) == req
                server.write(RESPONSE)
                conv.data(False, pump(s_out, c_in), at + 1_000)
                assert read_all(client) == RESPONSE
                twin.data(True, req, at)
                twin.data(False, RESPONSE, at + 1_000)
            try:
                client.unwrap()
            except ssl.SSLWantReadError:
                pass
            conv.data(True, pump(c_out, s_in), start + 300_000)
            try:
                server.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            conv.data(False, pump(s_out, c_in), start + 301_000)
            conv.close(start + 302_000)
            twin.close(start + 302_000)
            prev = (client_ctx, server_ctx, client.session)
    write_pcap(os.path.join(HERE, "openssl.pcap"), tls_packets)
    write_pcap(os.path.join(HERE, "openssl-plain.pcap"), plain_packets)
    print(f"{len(CONNS)} connections, {len(tls_packets)} TLS packets, "
          f"{len(plain_packets)} plaintext packets ({ssl.OPENSSL_VERSION})")


if __name__ == "__main__":
    sys.exit(main())
