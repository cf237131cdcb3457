#!/bin/sh
# Captures headless Chromium loading a page over QUIC + HTTP/3 from h3_server.py
# (aioquic) on loopback, with Chromium's TLS key log. Writes, next to this script:
#   chrome_h3.pcap   tcpdump on lo, only UDP port 4433 (link type of lo: Ethernet)
#   chrome.keylog    Chromium's TLS secrets (--ssl-key-log-file)
#   server.keylog    the server's TLS secrets (aioquic), a cross-check
#   received.json    what the server received: every request's method, path, header
#                    fields (QPACK-decoded), body and its length, stream, connection
#   consentry.toml   the case: device 127.0.0.1 with the page's synthetic identifiers,
#                    a refusal written at the start of this run (before Chromium starts)
# NOT deterministic: fresh certificate, keys, connection ids and times each run;
# regenerate all outputs together.
#
# Needs: root (tcpdump on lo), tcpdump, chromium (Debian package), a virtualenv with
# aioquic 1.7.2 (VENV, default /work/venv-quic), optionally tshark for the check.
# Run:   sh captures/quic/chrome/make_chrome_h3.sh
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${VENV:-/work/venv-quic}
CHROMIUM=${CHROMIUM:-chromium}
PORT=4433
WORK=$(mktemp -d /tmp/chrome-h3.XXXXXX)
SERVER_PID= TCPDUMP_PID=

cleanup() {
    if [ -n "$TCPDUMP_PID" ] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
        kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cd "$HERE"
rm -f chrome_h3.pcap chrome.keylog server.keylog received.json

# The case: the refusal is this moment, a few seconds before Chromium's first packet.
REFUSED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat > consentry.toml <<EOF
# Case file of the Chromium HTTP/3 capture (make_chrome_h3.sh writes it).
# All identifier values are synthetic. Client and server are both on 127.0.0.1;
# the server name is localhost (a single label: an unknown third party to consentry's
# tracker database; case files cannot declare trackers).

[case]
id = "quic-chrome-$(date -u +%Y-%m-%d)"
title = "Headless Chromium sending identifiers over HTTP/3 to localhost"
timezone = "UTC"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "chromium"
addresses = ["127.0.0.1"]
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"
imei = "490154203237518"
email = "tester@example.org"

[[consent]]
device = "chromium"
at = "$REFUSED_AT"
decision = "refused"
note = "the run's start, before Chromium was launched (all purposes)"
EOF

"$VENV/bin/python" "$HERE/h3_server.py" --port "$PORT" --log received.json \
    --keylog server.keylog --spki-out "$WORK/spki" 2>"$WORK/server.err" &
SERVER_PID=$!
i=0
while [ ! -s "$WORK/spki" ]; do
    i=$((i + 1)); [ $i -le 100 ] || { cat "$WORK/server.err"; exit 1; }; sleep 0.1
done
SPKI=$(cat "$WORK/spki")

# -Z root: Debian's tcpdump drops to user tcpdump, who may not write here.
tcpdump -i lo -n -U -Z root -w chrome_h3.pcap "udp port $PORT" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
i=0
while ! grep -q listening "$WORK/tcpdump.err" 2>/dev/null; do
    i=$((i + 1)); [ $i -le 100 ] || { cat "$WORK/tcpdump.err"; exit 1; }; sleep 0.1
done
sleep 2

timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
    --user-data-dir="$WORK/profile" --no-first-run --no-default-browser-check \
    --disable-background-networking --disable-component-update --disable-sync \
    --enable-quic --origin-to-force-quic-on=localhost:$PORT \
    --ignore-certificate-errors-spki-list="$SPKI" \
    --ssl-key-log-file="$HERE/chrome.keylog" \
    --host-resolver-rules="MAP localhost 127.0.0.1" \
    --virtual-time-budget=5000 --dump-dom "https://localhost:$PORT/" \
    >"$WORK/dom.html" 2>"$WORK/chromium.err" || {
        echo "chromium failed:"; cat "$WORK/chromium.err"; exit 1; }
sleep 1
chmod 644 chrome.keylog

kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=

echo "== server"; cat "$WORK/server.err"
echo "== tcpdump"; cat "$WORK/tcpdump.err"
echo "== page state"; grep -o '<p id="state">[^<]*</p>' "$WORK/dom.html" || cat "$WORK/dom.html"
echo "== chromium key log labels"
cut -d' ' -f1 chrome.keylog | sort | uniq -c
if command -v tshark >/dev/null; then
    echo "== tshark: QUIC packets, decrypted with chrome.keylog"
    tshark -r chrome_h3.pcap -o tls.keylog_file:chrome.keylog -Y quic | wc -l
    tshark -r chrome_h3.pcap -o tls.keylog_file:chrome.keylog -q -z expert,warn
fi
ls -l chrome_h3.pcap chrome.keylog server.keylog received.json consentry.toml
