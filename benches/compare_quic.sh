#!/usr/bin/env bash
# Times consentry and tshark side by side on one HTTP/3 capture with its key log.
#
# Usage: benches/compare_quic.sh [DIR]
#   DIR  where the capture is, or is made (default $QUIC_BENCH_DIR, else
#        /tmp/consentry-h3bench; in the repository only under target/): h3bench.pcap,
#        h3bench.keylog, consentry.toml, h3bench.json, written by
#        captures/quic/make_h3.py --bench-out DIR unless h3bench.json is there with the
#        same CONNECTIONS and REQUESTS.
# Env: VENV=virtualenv with aioquic 1.7.2 (default /work/venv-quic), CONNECTIONS (120),
#      REQUESTS per connection (60), CONCURRENT connections (8), REGEN=1 remakes it;
#      CONSENTRY=path of the binary (default target/release/consentry), RUNS=n
#      (default 1: n rounds of every tool once; each tool's run with least CPU is kept,
#      and with n >= 2 the ratios to consentry-j1, round by round, follow the table),
#      TOOLS="cat consentry-j1 consentry exchanges tshark tshark-floor tshark-q"
#      (default: all) picks the rows.
#
# The capture (make_h3.py's docstring has the details): 120 aioquic HTTP/3 connections
# of 60 POSTs each, JSON bodies and responses of 1-64 KiB, three suites, 8 connections
# at a time; one request in eight carries the case's advertising id, three in four of
# those in the body, the rest in the query string. 358 MB, 335 800 packets; made in 59 s
# (one core) on the 2-core development VM, 4 December 2026.
#
# Rows, each under /usr/bin/time -f '%e %U %S %M':
#   cat            reading the file (the ceiling)
#   consentry-j1   consentry analyze --case C --keylog K -j 1 --format json F
#   consentry      the same with the default threads (one per core)
#   exchanges      consentry exchanges --case C --keylog K --format jsonl F
#   tshark         tshark -n -r F -o tls.keylog_file:K -Y 'quic.stream_data contains
#                  "ID"': tshark 4.0 decrypts QUIC but has no HTTP/3 dissector, so
#                  this is the closest it comes: the packets whose decrypted STREAM
#                  frames hold the identifier's bytes
#   tshark-floor   tshark -n -r F -o tls.keylog_file:K -q -Y frame: every packet
#                  dissected and decrypted, nothing printed (its decryption floor)
#   tshark-q       tshark -n -r F -o tls.keylog_file:K -q: NOT a decryption floor:
#                  with nothing to print, filter or tap, tshark 4.0 dissects nothing
#                  and only reads the file (0.25 CPU s for the 358 MB one; with -Y
#                  frame and without the key log, 1.8)
# Found: consentry, the requests with a finding for the advertising id (each request
# carrying it has one, share-after-refusal; excessive-frequency adds some for the
# same requests), the findings by rule and the QUIC connections decrypted;
# exchanges, the HTTP/3 exchanges listed; tshark, its matching packets. tshark finds
# fewer: it cannot see the id in a query string (QPACK Huffman-codes it), nor one
# split across two packets' STREAM frames, and it counts packets, not requests.
# MB = 10^6 bytes; the table is markdown: wall s, CPU s (user+sys), MB/s wall, MB/s
# per CPU-second, peak RSS MB, found.
set -u

if [ $# -gt 1 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
DIR=${1:-${QUIC_BENCH_DIR:-/tmp/consentry-h3bench}}
VENV=${VENV:-/work/venv-quic}
CONNECTIONS=${CONNECTIONS:-120} REQUESTS=${REQUESTS:-60} CONCURRENT=${CONCURRENT:-8}
CONSENTRY=${CONSENTRY:-$ROOT/target/release/consentry}
RUNS=${RUNS:-1}
TOOLS=" ${TOOLS:-cat consentry-j1 consentry exchanges tshark tshark-floor tshark-q} "
want() { [[ $TOOLS == *" $1 "* ]]; }
case "$(realpath -m "$DIR")/" in "$ROOT"/target/*) ;; "$ROOT"/*)
    echo "compare_quic.sh: $DIR is inside the repository (target/ aside); put the capture elsewhere" >&2
    exit 2;;
esac

MANIFEST=$DIR/h3bench.json
manifest() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$MANIFEST" "$1"; }
if [ "${REGEN:-0}" = 1 ] || [ ! -r "$MANIFEST" ] || [ ! -r "$DIR/h3bench.pcap" ] ||
    [ "$(manifest connections)/$(manifest requests_per_connection)" != "$CONNECTIONS/$REQUESTS" ]; then
    echo "compare_quic.sh: writing the capture to $DIR ($CONNECTIONS connections x $REQUESTS requests)" >&2
    "$VENV/bin/python" "$ROOT/captures/quic/make_h3.py" --bench-out "$DIR" --connections "$CONNECTIONS" \
        --requests "$REQUESTS" --concurrent "$CONCURRENT" || exit 2
fi
FILE=$DIR/h3bench.pcap KEYLOG=$DIR/h3bench.keylog CASE=$DIR/consentry.toml
NEEDLE=$(manifest needle)
. "$ROOT/benches/timing.sh"
timing_init compare_quic.sh "$FILE"

# Requests with a finding for the advertising id, findings by rule and QUIC
# connections decrypted, from the JSON.
consentry_count() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); s = d["summary"]
n = len({f["exchange"] for f in d["findings"] if any(x["type"] == "advertising_id" for x in f["data"])})
rules = ", ".join("%d %s" % (v, k) for k, v in sorted(s["findings_by_rule"].items()))
print("%d requests with the id (%d findings: %s), %d/%d connections decrypted" % (n,
      s["findings"], rules, s["traffic"].get("tls_decrypted", 0), s["traffic"]["udp_flows"]))' "$1"
}
exchanges_count() {
    python3 -c 'import json, sys
n = h3 = 0
for line in open(sys.argv[1]):
    n += 1
    h3 += json.loads(line).get("http_version") == "HTTP/3"
print("%d exchanges, %d HTTP/3" % (n, h3))' "$1"
}

# One round: every tool once (timing_rounds runs RUNS rounds).
tools_once() {
    want cat && run cat "echo -" -- sh -c 'exec cat -- "$1" >/dev/null' cat "$FILE"
    if "$CONSENTRY" --version >/dev/null 2>&1; then
        want consentry-j1 && run consentry-j1 "consentry_count '$WORK/consentry-j1.out'" -- \
            "$CONSENTRY" analyze --case "$CASE" --keylog "$KEYLOG" -j 1 --format json "$FILE"
        want consentry && run consentry "consentry_count '$WORK/consentry.out'" -- \
            "$CONSENTRY" analyze --case "$CASE" --keylog "$KEYLOG" --format json "$FILE"
        want exchanges && run exchanges "exchanges_count '$WORK/exchanges.out'" -- \
            "$CONSENTRY" exchanges --case "$CASE" --keylog "$KEYLOG" --format jsonl "$FILE"
    else
        for t in consentry-j1 consentry exchanges; do
            want $t && missing $t "no consentry binary at $CONSENTRY (set CONSENTRY)"
        done
    fi
    if command -v tshark >/dev/null; then
        TV=$(tshark --version 2>/dev/null | sed -n '1s/.* \([0-9][0-9.]*\).*/\1/p')
        want tshark && run "tshark ${TV:-?}" "echo \"\$(wc -l <'$WORK/tshark ${TV:-?}.out') packets\"" -- \
            tshark -n -r "$FILE" -o "tls.keylog_file:$KEYLOG" -Y "quic.stream_data contains \"$NEEDLE\""
        want tshark-floor && run "tshark ${TV:-?} -q -Y frame" "echo -" -- \
            tshark -n -r "$FILE" -o "tls.keylog_file:$KEYLOG" -q -Y frame
        want tshark-q && run "tshark ${TV:-?} -q" "echo -" -- \
            tshark -n -r "$FILE" -o "tls.keylog_file:$KEYLOG" -q
    else
        for t in tshark tshark-floor tshark-q; do want $t && na_row $t; done
    fi
}
timing_rounds tools_once

echo "capture: $FILE ($MB MB; $(manifest packets) packets, $(manifest connections) connections," \
    "$(manifest requests) requests, $(manifest requests_with_identifier) with the advertising id:" \
    "$(manifest identifier_in_body) in the body, $(manifest identifier_in_query) in the query;" \
    "made in $(manifest generation_seconds) s); rounds: $RUNS (every tool once a round; least CPU kept);" \
    "$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); load average before: $LOAD"
echo
print_rows
print_paired consentry-j1
