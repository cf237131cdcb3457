#!/usr/bin/env bash
# Times consentry and tshark side by side on one TLS capture with its key log (issue 7
# benchmarks).
#
# Usage: benches/compare_tls.sh FILE KEYLOG CASE
#   FILE, KEYLOG, CASE  e.g. from: cargo run --example gen_tls_capture -- --size 600M
#                       --out /tmp/bulk  (bulk.pcap, bulk.keylog, consentry.toml)
# Env: CONSENTRY=path of the binary (default target/release/consentry),
#      RUNS=n (default 1): n rounds, each running every tool once; each tool's run
#      with least CPU is kept (with n >= 2 the ratios to consentry-j1, round by
#      round, follow the table);
#      TOOLS="cat consentry-j1 consentry tshark tshark-2" (default: all) picks the rows.
#
# Rows, each under /usr/bin/time -f '%e %U %S %M':
#   cat            reading the file (the ceiling)
#   consentry-j1   consentry analyze --keylog, one thread (--format json: the summary
#                  gives the exchanges read and the connections decrypted)
#   consentry      the same with the default threads (one per core)
#   tshark         tshark -o tls.keylog_file:K -Y 'http or http2' -T fields
#                  -e http.request.uri -e http2.header.value (one pass)
#   tshark-2       the same with -2 (two passes, as needed for some reassembly)
# Prints a markdown table: wall s, CPU s (user+sys), MB/s wall, MB/s per CPU-second,
# peak RSS MB, and the HTTP requests each tool read (consentry: exchanges of decrypted
# connections; tshark: lines with an HTTP/1 URI plus POST method values among the
# HTTP/2 header values of its output -- the generator's requests are all POSTs).
# MB = 10^6 bytes. A missing or failing tool prints n/a.
set -u

if [ $# -ne 3 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
FILE=$1 KEYLOG=$2 CASE=$3
for f in "$FILE" "$KEYLOG" "$CASE"; do
    [ -r "$f" ] || { echo "compare_tls.sh: cannot read $f" >&2; exit 2; }
done
CONSENTRY=${CONSENTRY:-target/release/consentry}
RUNS=${RUNS:-1}
TOOLS=" ${TOOLS:-cat consentry-j1 consentry tshark tshark-2} "
want() { [[ $TOOLS == *" $1 "* ]]; }
. "$(dirname "$0")/timing.sh"
timing_init compare_tls.sh "$FILE"

# Requests and decrypted connections from consentry's JSON summary.
consentry_count() {
    python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print("%d requests, %d/%d TLS decrypted" % (s["exchanges"] - s["metadata_only"],
      s["traffic"].get("tls_decrypted", 0), s["traffic"]["tcp_connections"]))' "$1"
}

# One round: every tool once (timing_rounds runs RUNS rounds).
tools_once() {
    # cat writes to /dev/null: the ceiling is reading the file, not writing a copy of it
    # (run() keeps every tool's stdout in $WORK, which for cat is a 500 MB write).
    want cat && run cat "echo -" -- sh -c 'exec cat -- "$1" >/dev/null' cat "$FILE"
    if ! want consentry-j1 && ! want consentry; then
        :
    elif "$CONSENTRY" --version >/dev/null 2>&1; then
        want consentry-j1 && run consentry-j1 "consentry_count '$WORK/consentry-j1.out'" -- \
            "$CONSENTRY" analyze --case "$CASE" --keylog "$KEYLOG" -j 1 --format json "$FILE"
        want consentry && run consentry "consentry_count '$WORK/consentry.out'" -- \
            "$CONSENTRY" analyze --case "$CASE" --keylog "$KEYLOG" --format json "$FILE"
    else
        for t in consentry-j1 consentry; do
            want $t && missing $t "no consentry binary at $CONSENTRY (set CONSENTRY)"
        done
    fi
    if command -v tshark >/dev/null; then
        TV=$(tshark --version 2>/dev/null | sed -n '1s/.* \([0-9][0-9.]*\).*/\1/p')
        # The requests tshark read, from its own output: a line with a URI is an HTTP/1
        # request; in HTTP/2 header values, the method values (every request here is a
        # POST; the generator's responses carry none).
        tshark_count() {
            awk -F'\t' '$1 != "" { n++ }
                { k = split($2, v, ","); for (i = 1; i <= k; i++) n += v[i] == "POST" }
                END { print n " requests" }' "$1"
        }
        want tshark && run "tshark ${TV:-?}" "tshark_count '$WORK/tshark ${TV:-?}.out'" -- \
            tshark -n -r "$FILE" -o "tls.keylog_file:$KEYLOG" -Y 'http or http2' \
            -T fields -e http.request.uri -e http2.header.value
        want tshark-2 && run "tshark ${TV:-?} -2" "tshark_count '$WORK/tshark ${TV:-?} -2.out'" -- \
            tshark -n -2 -r "$FILE" -o "tls.keylog_file:$KEYLOG" -Y 'http or http2' \
            -T fields -e http.request.uri -e http2.header.value
    fi
}
timing_rounds tools_once

echo "capture: $FILE ($MB MB); key log: $KEYLOG; rounds: $RUNS (every tool once a round; least CPU kept); $(nproc) cores; load average before: $LOAD"
echo
print_rows
print_paired consentry-j1
