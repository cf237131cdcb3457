#!/usr/bin/env bash
# Records captures/netns/netns.pcap: a test phone's traffic through real network stacks.
#
# Usage (as root; needs ip, iptables, ip6tables, ethtool, tcpdump, nginx, dnsmasq, curl,
# openssl, python3): bash captures/netns/make_netns.sh
#
# Three network namespaces made here and removed at the end, joined by veth pairs (MTU
# 1400, offloads off, so the capture holds the segments the stacks sent): `cs-phone`
# (10.77.1.23, fd77:1::23) runs curl; `cs-router` forwards between the phone's network
# and the servers'; `cs-net` runs dnsmasq (10.77.0.53) and nginx (api.example-shop.com,
# ads.tracker.example over IPv4 and IPv6, ulogs.umeng.com on port 8080,
# app-measurement.com over TLS), and tcpdump on its link to the router: the gateway's
# view. The router drops some of the phone's TCP segments before the tap (the tap sees
# later segments before the one resent: out of order) and some of the servers' after
# it (the tap sees a segment and then its retransmission), and the servers' namespace
# drops some it receives (after the tap, likewise); chosen by position, not at random,
# so that the same segments go each run. The reordering and retransmissions are
# Linux's own TCP recovering from those losses. The requests (see `step` below): keep-
# alive, gzipped and chunked responses, a chunked upload, `Expect: 100-continue`,
# pipelining (a client of the script's own), HTTP/1.0, HTTP on port 8080, HTTP/2 in
# cleartext, TLS 1.3 with and without a key log, IPv6, and an SDK's own protocol to a
# name whose answer came by DNS over TCP and to ones whose answers came in IPv4 and
# IPv6 fragments.
# This VM's kernel has neither 802.1Q nor netem, so `vlan_tag.py` adds the span port's
# VLAN tags afterwards (802.1Q 42 on IPv4 and ARP, QinQ 100/42 on IPv6): the only
# bytes not written by a network stack.
#
# Writes netns.pcap, netns.keylog (curl's TLS secrets of the second TLS connection),
# consentry.toml (the refusal at the time it was made) and expected.json (each request
# as the client sent it, with its time window, and the TCP connections tcpdump saw).
# NOT deterministic: times, ports and sequence numbers change on every run, so
# regenerate all four files together, then the golden findings. KEEP=1 keeps the
# working directory (nginx's and curl's logs) for a look.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/make_netns.XXXXXX)
cleanup() {
    [ -f "$WORK/tcpdump.pid" ] && kill "$(cat "$WORK/tcpdump.pid")" 2>/dev/null || true
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    [ -f "$WORK/dnsmasq.pid" ] && kill "$(cat "$WORK/dnsmasq.pid")" 2>/dev/null || true
    [ -f "$WORK/sdk.pid" ] && kill "$(cat "$WORK/sdk.pid")" 2>/dev/null || true
    for ns in cs-phone cs-router cs-net; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf /etc/netns/cs-phone
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
# Namespaces left by a run that was killed would make `ip netns add` fail.
for ns in cs-phone cs-router cs-net; do ip netns del "$ns" 2>/dev/null || true; done
for tool in ip iptables ip6tables ethtool tcpdump nginx dnsmasq curl openssl python3; do
    command -v "$tool" >/dev/null || { echo "make_netns.sh: $tool is missing" >&2; exit 2; }
done

# --- the network -----------------------------------------------------------------------
PHONE=cs-phone ROUTER=cs-router NET=cs-net
for ns in "$PHONE" "$ROUTER" "$NET"; do ip netns add "$ns"; done
ip link add ph0 netns "$PHONE" type veth peer name rt0 netns "$ROUTER"
ip link add rt1 netns "$ROUTER" type veth peer name gw0 netns "$NET"
in_phone() { ip netns exec "$PHONE" "$@"; }
in_router() { ip netns exec "$ROUTER" "$@"; }
in_net() { ip netns exec "$NET" "$@"; }
for ns_if in "$PHONE ph0" "$ROUTER rt0" "$ROUTER rt1" "$NET gw0"; do
    set -- $ns_if
    ip netns exec "$1" ip link set lo up
    ip netns exec "$1" ip link set "$2" mtu 1400
    ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf."$2".accept_dad=0
done
in_phone ip link set ph0 address 02:77:00:01:00:23
in_router ip link set rt0 address 02:77:00:01:00:01
in_router ip link set rt1 address 02:77:00:00:00:fe
in_net ip link set gw0 address 02:77:00:00:00:01
in_phone ip addr add 10.77.1.23/24 dev ph0
in_phone ip addr add fd77:1::23/64 dev ph0 nodad
in_router ip addr add 10.77.1.1/24 dev rt0
in_router ip addr add fd77:1::1/64 dev rt0 nodad
in_router ip addr add 10.77.0.254/24 dev rt1
in_router ip addr add fd77::fe/64 dev rt1 nodad
for a in 1 53 80 81 82 83 $(seq 100 250); do in_net ip addr add "10.77.0.$a/24" dev gw0; done
in_net ip addr add fd77::1/64 dev gw0 nodad
in_net ip addr add fd77::81/64 dev gw0 nodad
in_net ip addr add fd77::53/64 dev gw0 nodad
for a in $(seq 100 199); do in_net ip addr add "fd77::6:$a/64" dev gw0 nodad; done
for ns_if in "$PHONE ph0" "$ROUTER rt0" "$ROUTER rt1" "$NET gw0"; do
    set -- $ns_if
    ip netns exec "$1" ip link set "$2" up
done
in_router sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_phone ip route add default via 10.77.1.1
in_phone ip -6 route add default via fd77:1::1
in_net ip route add 10.77.1.0/24 via 10.77.0.254
in_net ip -6 route add fd77:1::/64 via fd77::fe
mkdir -p "/etc/netns/$PHONE"
echo "nameserver 10.77.0.53" >"/etc/netns/$PHONE/resolv.conf"
printf '127.0.0.1 localhost\n' >"/etc/netns/$PHONE/hosts"

# Loss of TCP segments (see the top). Going to the servers, at the router (before the
# tap): the segment of the tracker's long POST that holds `"seq": 40` (its third) the
# first time it passes (the nth match with `--every 2 --packet 0` takes the first try,
# not the retransmission, the only other segment that holds it), and every 7th
# segment. Coming back, at the router (after the tap): every 13th segment. At the
# servers (after the tap): every 11th segment they receive. Counted per address
# family. (A drop on the sending host itself would not do: its TCP sees the failed
# send and resends before going on.)
in_router ip6tables -A FORWARD -i rt0 -p tcp -m string --algo bm --string '"seq": 40' \
    -m statistic --mode nth --every 2 --packet 0 -j DROP
for t in iptables ip6tables; do
    in_router "$t" -A FORWARD -i rt0 -p tcp -m statistic --mode nth --every 7 --packet 5 -j DROP
    in_router "$t" -A FORWARD -i rt1 -p tcp -m statistic --mode nth --every 13 --packet 6 -j DROP
    in_net "$t" -A INPUT -p tcp -m statistic --mode nth --every 11 --packet 9 -j DROP
done

# --- the servers -----------------------------------------------------------------------
# An SDK's server name with 60 addresses: its answer does not fit the 512 bytes of
# plain DNS over UDP, so the phone's resolver (glibc) asks again over TCP.
for a in $(seq 100 159); do echo "10.77.0.$a cdn.ads-sdk.example"; done >"$WORK/many.hosts"
# And one with 91 addresses, asked with EDNS (a 4096-byte buffer): its 1.5 KB answer
# leaves the server in two IPv4 fragments (the link's MTU is 1400).
for a in $(seq 160 250); do echo "10.77.0.$a img.ads-sdk.example"; done >>"$WORK/many.hosts"
# And one with 100 IPv6 addresses, asked over IPv6 with EDNS: its 2.9 KB answer leaves
# in IPv6 fragments (a Fragment extension header in each).
for a in $(seq 100 199); do echo "fd77::6:$a v6.ads-sdk.example"; done >>"$WORK/many.hosts"
in_net dnsmasq --no-resolv --no-hosts --addn-hosts="$WORK/many.hosts" --edns-packet-max=4096 \
    --bind-interfaces --listen-address=10.77.0.53,fd77::53 \
    --except-interface=lo --pid-file="$WORK/dnsmasq.pid" --user=root \
    --address=/api.example-shop.com/10.77.0.80 \
    --address=/ads.tracker.example/10.77.0.81 --address=/ads.tracker.example/fd77::81 \
    --address=/app-measurement.com/10.77.0.82 --address=/ulogs.umeng.com/10.77.0.83
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=app-measurement.com -addext subjectAltName=DNS:app-measurement.com \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
mkdir -p "$WORK/www/v1"
python3 - "$WORK/www" <<'EOF'
import json, sys
# A remote configuration of about 6 KB: nginx sends it gzipped and chunked.
flags = {f"feature_{i:03d}": {"enabled": i % 3 == 0, "rollout": i * 7 % 100} for i in range(120)}
open(sys.argv[1] + "/config.json", "w").write(json.dumps({"version": 42, "flags": flags}))
open(sys.argv[1] + "/pixel.gif", "wb").write(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
EOF
cat >"$WORK/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    types { application/json json; image/gif gif; }
    gzip on;
    gzip_types application/json;
    gzip_min_length 0;
    server {
        listen 10.77.0.80:80;
        listen 10.77.0.81:80;
        listen [fd77::81]:80;
        listen 10.77.0.83:8080;
        listen 10.77.0.81:8082 http2;
        listen 10.77.0.82:443 ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/www;
        location = /v1/login { default_type application/json; return 200 '{"token":"t-5f1e"}'; }
        location = /collect { default_type application/json; return 200 '{"ok":1}'; }
        location = /upload { default_type application/json; return 200 '{"ok":1}'; }
        location = /log { default_type text/plain; return 200 'ok'; }
        location = /a { default_type text/plain; return 204; }
    }
}
EOF
in_net nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
# The SDK's own protocol on port 7000 of those addresses: the server reads what a
# client sends and answers with 4 bytes.
in_net python3 - <<'PY' &
import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7000))
s.listen()
s.settimeout(60)
while True:
    try:
        c, _ = s.accept()
    except OSError:
        break
    c.settimeout(5)
    try:
        c.recv(65536)
        c.sendall(b"\x00\x00\x00\x00")
    except OSError:
        pass
    c.close()
PY
echo $! >"$WORK/sdk.pid"
for _ in $(seq 50); do [ -s "$WORK/nginx.pid" ] && break; sleep 0.1; done

# --- the capture -----------------------------------------------------------------------
# Not through in_net: `$!` must be tcpdump itself (ip netns exec execs it), so that it
# is stopped, and writes its last packets, before the interface goes; immediate mode,
# or the last packets wait in a kernel block that tcpdump never reads when stopped.
ip netns exec "$NET" tcpdump -i gw0 -s 0 -U --immediate-mode -w "$WORK/raw.pcap" 2>"$WORK/tcpdump.err" &
echo $! >"$WORK/tcpdump.pid"
for _ in $(seq 50); do grep -q listening "$WORK/tcpdump.err" && break; sleep 0.1; done

# --- the phone's traffic ------------------------------------------------------------------
# Synthetic identifiers of DESIGN.md §10 (those of captures/gateway's pixel7).
ADID=38400000-8cf0-11bd-b23e-10b96e40000d
ANDROID_ID=9774d56d682e549c
IMEI=490154203237518
EMAIL=tester@example.org
CURL_VERSION=$(curl --version | awk 'NR == 1 {print $2}')
python3 - "$WORK" "$ADID" "$IMEI" "$CURL_VERSION" <<'EOF'
import gzip, json, sys
work, adid, imei, curl_version = sys.argv[1:5]
# About 8 KB of events, then the advertising id placed to straddle two of the
# IPv6 connection's segments: its value starts 12 bytes before a multiple of the MSS
# (1400 - 40 - 20 - 12 of timestamps) counted from the request's first byte, given
# the head curl writes for it.
MSS = 1328
events = [{"name": "screen_view", "seq": i, "params": {"screen": f"catalogue/{i}", "ms": 1000 + i}}
          for i in range(90)]
def request(pad):
    body = json.dumps({"events": events, "pad": "x" * pad, "advertiser_id": adid})
    head = ("POST /collect HTTP/1.1\r\nHost: ads.tracker.example\r\n"
            f"User-Agent: curl/{curl_version}\r\nAccept: */*\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head, body
for pad in range(MSS):
    head, body = request(pad)
    if (len(head) + body.index(adid)) % MSS == MSS - 12:
        break
open(work + "/collect.json", "w").write(body)
open(work + "/upload.json", "w").write(json.dumps({"device": {"imei": imei, "model": "Pixel 7"},
                                                    "log": ["boot"] * 400}))
late = json.dumps({"events": events[:40], "advertiser_id": adid}).encode()
open(work + "/late.json.gz", "wb").write(gzip.compress(late, mtime=0))
EOF
printf '{"email":"%s","password":"hunter2"}' "$EMAIL" >"$WORK/login.json"

LOG=$WORK/steps.jsonl
# step NAME CURL-ARGS...: runs curl in the phone's namespace and logs its time window.
# timed NAME COMMAND...: runs COMMAND and logs its time window as step NAME.
timed() {
    local name=$1 start end
    shift
    start=$(date -u +%s.%6N)
    "$@"
    end=$(date -u +%s.%6N)
    printf '{"step":"%s","start":%s,"end":%s}\n' "$name" "$start" "$end" >>"$LOG"
}
# step NAME CURL-ARGS...: curl in the phone's namespace, timed.
step() {
    local name=$1
    shift
    timed "$name" in_phone curl -s -S --http1.1 --max-time 60 -o /dev/null \
        -w '%{http_code} %{num_connects} %{url_effective}\n' "$@" >>"$WORK/curl.log"
}
# sdk NAME SDK-CLIENT-ARGS...: sdk_client.py in the phone's namespace, timed.
sdk() {
    local name=$1
    shift
    timed "$name" in_phone python3 "$HERE/sdk_client.py" "$@"
}
# The first party: a configuration (asked for compressed: nginx sends it gzipped and
# chunked), then a login on the same connection.
step first-party --compressed http://api.example-shop.com/config.json \
    --next -s -S --http1.1 -o /dev/null -H 'Content-Type: application/json' \
    --data-binary "@$WORK/login.json" http://api.example-shop.com/v1/login
# The tracker over IPv6, keep-alive: a long JSON POST, a pixel, a chunked upload.
step tracker-ipv6 -6 -H 'Content-Type: application/json' --data-binary "@$WORK/collect.json" \
    http://ads.tracker.example/collect \
    --next -6 -s -S --http1.1 -o /dev/null "http://ads.tracker.example/pixel.gif?adid=$ADID&ev=open" \
    --next -6 -s -S --http1.1 -o /dev/null -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary "@$WORK/upload.json" http://ads.tracker.example/upload
# TLS to a tracker, no key log: what the gateway sees is its ClientHello.
step tls-tracker -4 -k https://app-measurement.com/a
# HTTP on port 8080 (found by its content, not its port): a form with the Android id.
step http-8080 -4 --data "android_id=$ANDROID_ID&ev=launch" http://ulogs.umeng.com:8080/log
# HTTP/2 in cleartext with prior knowledge (port 8082): a pixel. (One request: with
# a second on the same connection, curl 7.88 against nginx 1.22 fails with "Error in
# the HTTP2 framing layer", on a link without loss as well.)
step h2c -4 --http2-prior-knowledge "http://ads.tracker.example:8082/pixel.gif?adid=$ADID&ev=h2c"
# The SDK's login in its own protocol (a 4-byte length, then JSON with the IMEI) to
# cdn.ads-sdk.example, whose addresses came in a DNS answer over TCP.
sdk sdk-login cdn.ads-sdk.example login imei "$IMEI"
# The same SDK's image server, resolved by a lookup with EDNS whose answer comes in two
# IPv4 fragments, then the Android id to its first address.
sdk sdk-image img.ads-sdk.example img android_id "$ANDROID_ID" A 10.77.0.53
# The same over IPv6: an AAAA lookup whose answer comes in IPv6 fragments, then the
# advertising id to the first address.
sdk sdk-image-v6 v6.ads-sdk.example img advertising_id "$ADID" AAAA fd77::53
# A body sent only after the server's `100 Continue`: the Android id to the tracker.
step expect-continue -4 -H 'Expect: 100-continue' -H 'Content-Type: application/json' \
    --data-binary "{\"android_id\":\"$ANDROID_ID\",\"ev\":\"install\"}" \
    http://ads.tracker.example/upload
# Two requests written at once (pipelined) by a client of its own over IPv6, the
# second asking to close; nginx answers both in order.
timed pipelined in_phone python3 - "$ADID" <<'PY'
import socket, sys
adid = sys.argv[1]
family, kind, proto, _, address = socket.getaddrinfo("ads.tracker.example", 80, socket.AF_INET6, socket.SOCK_STREAM)[0]
s = socket.socket(family, kind, proto)
s.settimeout(30)
s.connect(address)
s.sendall((f"GET /pixel.gif?adid={adid}&ev=pipelined HTTP/1.1\r\nHost: ads.tracker.example\r\n\r\n"
           "GET /config.json HTTP/1.1\r\nHost: ads.tracker.example\r\nConnection: close\r\n\r\n").encode())
while s.recv(65536):
    pass
PY
sleep 1
REFUSED=$(date -u +%s.%6N)
sleep 1
# After the refusal: the tracker again over IPv4, the body gzip-encoded, then the
# configuration on the same connection.
step tracker-after-refusal -4 -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' \
    --data-binary "@$WORK/late.json.gz" http://ads.tracker.example/collect \
    --next -4 -s -S --http1.1 -o /dev/null --compressed http://ads.tracker.example/config.json
# HTTP/1.0, one request to a connection: the advertising id in the query.
step http10 -4 --http1.0 "http://ulogs.umeng.com:8080/log?adid=$ADID"
# TLS to the tracker again, now with curl's key log (netns.keylog): a JSON POST with
# the advertising id, readable with the key log, a server name without it.
SSLKEYLOGFILE="$WORK/keylog" step tls-keylog -4 -k -H 'Content-Type: application/json' \
    --data-binary "{\"advertising_id\":\"$ADID\"}" https://app-measurement.com/collect
sleep 0.5
for t in iptables ip6tables; do in_router "$t" -L FORWARD -n -v >>"$WORK/router-drops.txt"; done
kill "$(cat "$WORK/tcpdump.pid")"
wait "$(cat "$WORK/tcpdump.pid")" 2>/dev/null || true
rm -f "$WORK/tcpdump.pid"

# --- the files -------------------------------------------------------------------------
python3 "$HERE/vlan_tag.py" "$WORK/raw.pcap" "$HERE/netns.pcap"
cp "$WORK/keylog" "$HERE/netns.keylog"
python3 - "$HERE" "$LOG" "$REFUSED" "$ADID" "$ANDROID_ID" "$IMEI" "$EMAIL" "$WORK/raw.pcap" <<'EOF'
import datetime, json, struct, sys
here, log, refused, adid, android_id, imei, email, raw = sys.argv[1:9]

def tcp_connections(path):
    """The TCP connections tcpdump saw open (distinct SYNs without ACK), and those of
    them to port 53: counted here, since how often the resolver falls back to TCP is
    the resolver's business. tcpdump writes this host's byte order, Ethernet frames."""
    data = open(path, "rb").read()
    end = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    seen, pos = set(), 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from(end + "I", data, pos + 8)[0]
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        kind = frame[12:14]
        if kind == b"\x08\x00" and frame[23] == 6:
            ip = frame[14:]
            ends, tcp = (ip[12:16], ip[16:20]), ip[(ip[0] & 15) * 4 :]
        elif kind == b"\x86\xdd" and frame[20] == 6:
            ends, tcp = (frame[22:38], frame[38:54]), frame[54:]
        else:
            continue
        if tcp[13] & 0x12 == 0x02:
            seen.add((ends, tcp[0:2], tcp[2:4]))
    return len(seen), sum(1 for _, _, port in seen if port == b"\x00\x35")
def rfc3339(t):
    d = datetime.datetime.fromtimestamp(float(t), datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
steps = {s["step"]: s for s in map(json.loads, open(log))}
connections, dns_connections = tcp_connections(raw)
def window(name):
    return {"start": rfc3339(steps[name]["start"]), "end": rfc3339(steps[name]["end"])}
expected = {
    "refused_at": rfc3339(refused),
    "device": "pixel7",
    "tcp_connections": connections,
    "dns_tcp_connections": dns_connections,
    "requests": [
        dict(window("first-party"), host="api.example-shop.com", method="GET", path="/config.json", family=4, data=[]),
        dict(window("first-party"), host="api.example-shop.com", method="POST", path="/v1/login", family=4, data=["email"]),
        dict(window("tracker-ipv6"), host="ads.tracker.example", method="POST", path="/collect", family=6, data=["advertising_id"]),
        dict(window("tracker-ipv6"), host="ads.tracker.example", method="GET", path=f"/pixel.gif?adid={adid}&ev=open", family=6, data=["advertising_id"]),
        dict(window("tracker-ipv6"), host="ads.tracker.example", method="POST", path="/upload", family=6, data=["imei"], chunked=True),
        dict(window("http-8080"), host="ulogs.umeng.com", method="POST", path="/log", family=4, port=8080, data=["android_id"]),
        dict(window("h2c"), host="ads.tracker.example", method="GET", path=f"/pixel.gif?adid={adid}&ev=h2c", family=4, data=["advertising_id"], version="HTTP/2"),
        dict(window("expect-continue"), host="ads.tracker.example", method="POST", path="/upload", family=4, data=["android_id"], expect_continue=True),
        dict(window("pipelined"), host="ads.tracker.example", method="GET", path=f"/pixel.gif?adid={adid}&ev=pipelined", family=6, data=["advertising_id"], pipelined=True),
        dict(window("pipelined"), host="ads.tracker.example", method="GET", path="/config.json", family=6, data=[], pipelined=True),
        dict(window("tracker-after-refusal"), host="ads.tracker.example", method="POST", path="/collect", family=4, data=["advertising_id"], content_encoding="gzip"),
        dict(window("tracker-after-refusal"), host="ads.tracker.example", method="GET", path="/config.json", family=4, data=[]),
        dict(window("http10"), host="ulogs.umeng.com", method="GET", path=f"/log?adid={adid}", family=4, port=8080, data=["advertising_id"], version="HTTP/1.0"),
    ],
    "payloads": [dict(window("sdk-login"), host="cdn.ads-sdk.example", port=7000, family=4,
                      data=["imei"], dns_over_tcp=True),
                 dict(window("sdk-image"), host="img.ads-sdk.example", port=7000, family=4,
                      data=["android_id"], dns_fragmented=True),
                 dict(window("sdk-image-v6"), host="v6.ads-sdk.example", port=7000, family=6,
                      data=["advertising_id"], dns_fragmented=True)],
    "tls": [dict(window("tls-tracker"), sni="app-measurement.com", family=4),
            dict(window("tls-keylog"), sni="app-measurement.com", family=4,
                 keylog="netns.keylog", method="POST", path="/collect", data=["advertising_id"])],
}
open(here + "/expected.json", "w").write(json.dumps(expected, indent=1) + "\n")
case = f'''# Case file of captures/netns/netns.pcap (make_netns.sh writes it, with the time of
# the refusal it made). All identifier values are synthetic.

[case]
id = "netns-real-stacks"
title = "A test phone through real network stacks (curl, nginx, dnsmasq), a span port's view"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "pixel7"
addresses = ["10.77.1.23", "fd77:1::23"]
[device.identifiers]
advertising_id = "{adid}"
android_id = "{android_id}"
imei = "{imei}"
email = "{email}"

[[consent]]
device = "pixel7"
at = "{rfc3339(refused)}"
decision = "refused"
note = "tapped Disagree (all purposes), between the two tracker sessions"
'''
open(here + "/consentry.toml", "w").write(case)
EOF
echo "wrote $HERE/netns.pcap, consentry.toml and expected.json"
