#!/usr/bin/env bash
# Benchmarks the proxy's DNS relay (`consentry proxy --dns-listen`) beside mitmproxy's
# DNS mode (`mitmdump --mode dns`), both relaying to the same upstream, everything
# on 127.0.0.1.
#
# Usage: benches/dns_compare.sh            (from the repository root, as root: the
#   upstream listens on port 53, the only port mitmproxy's resolver asks)
# Build first: cargo build --release --bin consentry
# Tools: dnsperf and dnsmasq (apt-get install dnsperf dnsmasq-base); mitmdump
#   (python3.12+ -m venv /work/venv-mitm && /work/venv-mitm/bin/pip install
#   mitmproxy). A missing peer is named and its row skipped.
# Env: DURATION=s per row (default 10); NAMES (default 100000) distinct names asked,
#   each once per pass, so no cache answers; FLAGGED=1 in N of them carry an
#   identifier's MD5 as a label (default 100: 1 %), which consentry records and
#   judges; OUTSTANDING=dnsperf's queries in flight (default 100); ROWS="direct
#   consentry mitmdump"; CONSENTRY, MITMDUMP = paths; PORT_BASE (default 27500).
#
# Upstream: dnsmasq on 127.0.0.1:53 answering every A query with 127.0.0.2 itself
# (no cache, no forwarding). `direct` is dnsperf against it, the ceiling. Each row
# starts its relay afresh; CPU per query = utime+stime of the relay process over the
# run / queries completed; peak RSS is its VmHWM. Prints a markdown table.
set -u

DURATION=${DURATION:-10}
NAMES=${NAMES:-100000}
FLAGGED=${FLAGGED:-100}
OUTSTANDING=${OUTSTANDING:-100}
ROWS=${ROWS:-direct consentry mitmdump}
CONSENTRY=${CONSENTRY:-target/release/consentry}
MITMDUMP=${MITMDUMP:-/work/venv-mitm/bin/mitmdump}
PORT_BASE=${PORT_BASE:-27500}
AD_ID=38400000-8cf0-11bd-b23e-10b96e40000d

for tool in dnsperf dnsmasq; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install dnsperf dnsmasq-base)" >&2; exit 2; }
done
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The names: host<i>.bench.example, and every FLAGGED-th one with the MD5 of the
# advertising id as its first label (an SDK's lookup that carries it).
md5=$(printf %s "$AD_ID" | md5sum | cut -c1-32)
awk -v n="$NAMES" -v every="$FLAGGED" -v md5="$md5" 'BEGIN {
    for (i = 0; i < n; i++) {
        if (every > 0 && i % every == 0) printf "%s.i%d.metrics-sdk.example A\n", md5, i;
        else printf "host%d.bench.example A\n", i;
    }
}' > "$work/queries.txt"

cat > "$work/consentry.toml" <<EOF
[case]
id = "dns-bench"
[app]
name = "Bench"
[[device]]
id = "phone00"
addresses = ["127.0.0.1"]
[device.identifiers]
advertising_id = "$AD_ID"
EOF

dnsmasq --no-daemon --port=53 --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --address=/#/127.0.0.2 --cache-size=0 \
    --log-facility=/dev/null --user=root >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
sleep 0.5
kill -0 "${pids[0]}" 2>/dev/null || { echo "dnsmasq did not start (port 53 in use?): $(cat "$work/dnsmasq.log")" >&2; exit 2; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

echo "| relay | queries/s | avg latency ms | lost | CPU µs/query | peak RSS MB |"
echo "|---|---|---|---|---|---|"
for row in $ROWS; do
    port=$PORT_BASE
    pid=""
    case $row in
        direct) port=53 ;;
        consentry)
            [ -x "$CONSENTRY" ] || { echo "| consentry | (no $CONSENTRY: build it) | | | | |"; continue; }
            rm -f "$work"/proxy-*.jsonl
            "$CONSENTRY" proxy --case "$work/consentry.toml" --ca-dir "$work/ca" \
                --listen "127.0.0.1:$((PORT_BASE + 1))" --control off \
                --dns-listen "127.0.0.1:$port" --dns-upstream 127.0.0.1 \
                >"$work/consentry.out" 2>"$work/consentry.err" &
            pid=$! ;;
        mitmdump)
            [ -x "$MITMDUMP" ] || { echo "| mitmdump | (not installed) | | | | |"; continue; }
            "$MITMDUMP" -q --mode "dns@$port" --listen-host 127.0.0.1 \
                --set dns_name_servers=127.0.0.1 --set confdir="$work/mitm" \
                >"$work/mitmdump.log" 2>&1 &
            pid=$! ;;
        *) echo "unknown row $row" >&2; continue ;;
    esac
    if [ -n "$pid" ]; then
        pids+=("$pid")
        # Up, and one query answered (a warm-up).
        for _ in $(seq 50); do
            dnsperf -s 127.0.0.1 -p "$port" -d <(echo "warm.bench.example A") -n 1 -t 1 2>/dev/null \
                | grep -q 'Queries completed: *1 ' && break
            sleep 0.2
        done
        before=$(ticks "$pid")
    fi
    out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$DURATION" -q "$OUTSTANDING" 2>&1)
    qps=$(awk '/Queries per second/ {printf "%.0f", $4}' <<<"$out")
    completed=$(awk '/Queries completed/ {print $3}' <<<"$out")
    lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
    latency=$(awk '/Average Latency/ {printf "%.2f", $4 * 1000}' <<<"$out")
    cpu="" rss=""
    if [ -n "$pid" ]; then
        after=$(ticks "$pid")
        cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$completed" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
        rss=$(hwm "$pid")
        kill -INT "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    echo "| $row | $qps | $latency | $lost | $cpu | $rss |"
    if [ "$row" = consentry ]; then
        recorded=$(wc -l < "$work/proxy-exchanges.jsonl" 2>/dev/null || echo 0)
        findings=$(wc -l < "$work/proxy-findings.jsonl" 2>/dev/null || echo 0)
        echo "  (consentry recorded $recorded exchanges, $findings findings: the flagged names)" >&2
    fi
done
