#!/usr/bin/env bash
# Benchmarks the intercepting proxy side by side with its peers (issue 4): one load
# generator (oha) against one nginx upstream, everything on 127.0.0.1.
#
# Usage: benches/proxy_compare.sh            (from the repository root)
# Build first: cargo build --release --bin consentry --example hudsucker_noop
# Tools: oha (cargo install oha --locked), nginx (apt-get install nginx), openssl,
#   python3; mitmdump (python3.12+ -m venv /work/venv-mitm &&
#   /work/venv-mitm/bin/pip install mitmproxy). A missing one is named and its column
#   or row skipped.
# Env: DURATION=s per row (default 10); PROXIES="direct mitmdump hudsucker consentry";
#   SCHEMES="http https"; SIZES="small 1m"; CONNS="1 50 500"; MODES="ka new" (keep-alive,
#   a new connection per request); ROWS=REGEX keeps only rows whose id
#   (proxy/scheme/size/conns/mode, e.g. consentry/https/small/50/ka) matches;
#   SPECIAL=0 skips the special targets (1 000 idle tunnels, 1 GB upload); UPLOAD_MB
#   (default 1000); IDLE (default 1000); OUTPUT=store|files (consentry's recording:
#   a case directory's store as `consentry init` makes, or JSON lines files);
#   CONSENTRY, NOOP, MITMDUMP, OHA = paths; PORT_BASE (default 27400); PERF_DIR=DIR
#   records each consentry row with `perf record -g` into DIR/ROW.data.
#   ROUNDS=n (default 1) runs the matrix n times, every proxy's row of a cell next to
#   the others' in each round, and then prints, cell by cell and round by round,
#   consentry's requests/s as a share of the no-op hudsucker's and as a multiple of
#   mitmdump's (and the no-op's), with the medians: the ratios of issue 4's targets,
#   each from the same minutes of the machine.
#   Fixed offered load (latency as it is usually measured: at a given rate, not at
#   saturation): RATES="1000 3000" req/s (oha -q RATE --latency-correction, small
#   responses, keep-alive, LOAD_CONNS=50 connections, both SCHEMES) for direct,
#   hudsucker and consentry; MITM_RATES="100" for mitmdump (what it can carry);
#   RATES="" MITM_RATES="" skip them. Their ids end in /qRATE (consentry/https/small/50/ka/q3000)
#   Each runs RATE_DURATION s (default 30) after a 1 s unmeasured warm-up at the same
#   concurrency (certificates minted, sessions and upstream pools filled), so the
#   opening of the LOAD_CONNS connections — dozens of full TLS handshakes at once,
#   which with --latency-correction delay every request scheduled meanwhile — stays
#   under 1 % of the requests: p99 is the steady state's.
#   and are filtered by ROWS too. "p99 added" is the row's p99 minus direct's at the
#   same scheme and rate (run direct first, as PROXIES does by default).
#   A/B of consentry builds instead of the matrix: AB="OLD_BIN NEW_BIN ..." runs
#   AB_PAIRS (default 4) rounds, each binary once per round in the given order, of
#   AB_REQUESTS (default 40000) keep-alive HTTPS requests for the small response at
#   AB_CONNS (default 50) connections (oha -n, so every run does the same work), each on
#   a freshly started proxy, and prints the proxy's CPU ticks during the run, split
#   into its runtime threads and its analysis thread, µs of CPU per request and req/s,
#   then each binary's mean. CPU per request is the figure to compare: requests/s
#   moves with whatever else the two cores run.
#
# Upstream: nginx (1 worker per core, HTTP/1.1, access log off) serving a 240-byte
# JSON document (/small.json) and a 1 MiB file (/1m.bin) over HTTP and HTTPS (its own
# throw-away CA, which every proxy trusts for upstream), and /upload/ accepting any body by PUT (written to disk, then deleted).
# Request URLs carry phone00's advertising id (`?adid=...`): consentry runs on a
# realistic case (10 devices, every identifier type, consent refused), so every
# request through it is a finding (full analysis, recorded as a tester would).
# Proxies: mitmdump -q (no addons), examples/hudsucker_noop (bare hudsucker, no-op
# handler), consentry proxy. Each row starts the proxy afresh, so its peak RSS
# (VmHWM) is that row's; CPU per request = utime+stime of the proxy process over the
# row / requests. oha trusts the proxies' certificates with --insecure.
# Prints a markdown table (requests/s, p50/p99 latency in ms, CPU ms per request,
# peak RSS MB, errors) and the special targets.
set -u

DURATION=${DURATION:-10}
PROXIES=${PROXIES:-direct mitmdump hudsucker consentry}
SCHEMES=${SCHEMES:-http https}
SIZES=${SIZES:-small 1m}
CONNS=${CONNS:-1 50 500}
MODES=${MODES:-ka new}
ROWS=${ROWS:-.}
SPECIAL=${SPECIAL:-1}
UPLOAD_MB=${UPLOAD_MB:-1000}
IDLE=${IDLE:-1000}
OUTPUT=${OUTPUT:-store}
RATES=${RATES-1000 3000}
MITM_RATES=${MITM_RATES-100}
RATE_DURATION=${RATE_DURATION:-30}
LOAD_CONNS=${LOAD_CONNS:-50}
ROUNDS=${ROUNDS:-1}
CONSENTRY=${CONSENTRY:-target/release/consentry}
# The A/B mode's case directory is made by its first binary.
[ -n "${AB:-}" ] && CONSENTRY=${AB%% *}
NOOP=${NOOP:-target/release/examples/hudsucker_noop}
MITMDUMP=${MITMDUMP:-$(command -v mitmdump || echo /work/venv-mitm/bin/mitmdump)}
OHA=${OHA:-$(command -v oha || echo ~/.cargo/bin/oha)}
PORT_BASE=${PORT_BASE:-27400}
HERE=$(cd "$(dirname "$0")" && pwd)
HZ=$(getconf CLK_TCK)

HTTP_PORT=$PORT_BASE
HTTPS_PORT=$((PORT_BASE + 1))
PROXY_PORT=$((PORT_BASE + 10))

die() { echo "proxy_compare.sh: $*" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a whole number from 1 (got '$ROUNDS')"
note() { echo "proxy_compare.sh: $*" >&2; }

[ -x "$OHA" ] || die "needs oha: cargo install oha --locked"
command -v nginx >/dev/null || die "needs nginx as the upstream: apt-get install nginx"
command -v openssl >/dev/null || die "needs openssl: apt-get install openssl"
command -v python3 >/dev/null || die "needs python3"
command -v curl >/dev/null || die "needs curl: apt-get install curl"
have() {
    case $1 in
    direct) return 0 ;;
    mitmdump) [ -x "$MITMDUMP" ] || { note "no mitmdump ($MITMDUMP): python3.12+ -m venv /work/venv-mitm && /work/venv-mitm/bin/pip install mitmproxy; skipping it"; return 1; } ;;
    hudsucker) [ -x "$NOOP" ] || { note "no $NOOP: cargo build --release --example hudsucker_noop; skipping it"; return 1; } ;;
    consentry) [ -x "$CONSENTRY" ] || { note "no $CONSENTRY: cargo build --release --bin consentry; skipping it"; return 1; } ;;
    *) die "unknown proxy $1" ;;
    esac
}
AVAILABLE=""
for p in $PROXIES; do have "$p" && AVAILABLE="$AVAILABLE $p"; done

WORK=$(mktemp -d /tmp/proxy_compare.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
    sleep 0.3
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- upstream: certificates, content, nginx -------------------------------------
mkdir -p "$WORK/www" "$WORK/tmp" "$WORK/ca" "$WORK/mitm"
# nginx's workers (www-data when started as root) traverse to the content.
chmod 711 "$WORK"
chmod 755 "$WORK/www"
(
    cd "$WORK" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout up-ca.key -out up-ca.pem -subj "/CN=proxy_compare upstream CA" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout up.key -out up.csr -subj "/CN=127.0.0.1" &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >up.ext &&
        openssl x509 -req -in up.csr -CA up-ca.pem -CAkey up-ca.key -CAcreateserial \
            -days 2 -extfile up.ext -out up.pem
) >"$WORK/openssl.log" 2>&1 || die "openssl failed: $(tail -n 3 "$WORK/openssl.log")"
printf '{"status":"ok","config":{"refresh":300,"features":["feed","cart","search"],"ab":"b"},"ts":1764417600,"message":"hello from the benchmark upstream","padding":"%s"}' \
    "$(head -c 60 /dev/zero | tr '\0' x)" >"$WORK/www/small.json"
head -c 1048576 /dev/urandom >"$WORK/www/1m.bin"
mkdir -p "$WORK/dav" && chmod 777 "$WORK/dav"
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    sendfile on;
    types { application/json json; application/octet-stream bin; }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        listen 127.0.0.1:$HTTPS_PORT ssl;
        ssl_certificate $WORK/up.pem;
        ssl_certificate_key $WORK/up.key;
        ssl_session_cache shared:SSL:10m;
        root $WORK/www;
        # The upload is written to disk by WebDAV PUT: nginx reads the whole body
        # before it answers (a bare 'return 200' answers first and leaves the client
        # and the proxies stuck with the rest of the body).
        location /upload/ {
            client_max_body_size 0;
            dav_methods PUT;
            alias $WORK/dav/;
        }
    }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.log" 2>&1 || die "nginx failed: $(cat "$WORK/nginx.log" "$WORK/nginx-error.log" 2>/dev/null | tail -n 3)"
for _ in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/small.json" && break
    sleep 0.1
done

# --- the realistic case (consentry) ---------------------------------------------
CASEDIR=$WORK/case
if [ "$OUTPUT" = store ] && [ -x "$CONSENTRY" ]; then
    "$CONSENTRY" init "$CASEDIR" >"$WORK/init.log" 2>&1 || die "consentry init failed: $(tail -n 3 "$WORK/init.log")"
else
    mkdir -p "$CASEDIR"
fi
ADID=$(python3 "$HERE/proxy_helpers.py" case "$CASEDIR/consentry.toml") || die "writing the case failed"

# --- proxies ----------------------------------------------------------------------
PROXY_PID=""
# start_proxy NAME: starts it on $PROXY_PORT, waits until it forwards a request.
start_proxy() {
    local name=$1 log=$WORK/$1.log
    case $name in
    direct) PROXY_PID=""; return 0 ;;
    mitmdump)
        "$MITMDUMP" -q --listen-host 127.0.0.1 -p "$PROXY_PORT" \
            --set confdir="$WORK/mitm" --set ssl_verify_upstream_trusted_ca="$WORK/up-ca.pem" \
            >"$log" 2>&1 &
        ;;
    hudsucker)
        "$NOOP" --listen "127.0.0.1:$PROXY_PORT" --upstream-ca "$WORK/up-ca.pem" >"$log" 2>&1 &
        ;;
    consentry)
        "$CONSENTRY" proxy --case "$CASEDIR/consentry.toml" --listen "127.0.0.1:$PROXY_PORT" \
            --ca-dir "$WORK/ca" --control off --upstream-ca "$WORK/up-ca.pem" --format jsonl \
            >>"$WORK/consentry-findings.jsonl" 2>"$log" &
        ;;
    esac
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    local i
    for i in $(seq 100); do
        if curl -sf -o /dev/null --max-time 2 -x "http://127.0.0.1:$PROXY_PORT" \
            "http://127.0.0.1:$HTTP_PORT/small.json?warmup=1"; then
            return 0
        fi
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    note "$name did not start: $(tail -n 3 "$log")"
    stop_proxy
    return 1
}
stop_proxy() {
    [ -n "$PROXY_PID" ] || return 0
    kill -TERM "$PROXY_PID" 2>/dev/null
    local i
    for i in $(seq 100); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=""
}
cpu_ticks() { # utime + stime of the proxy process
    [ -n "$PROXY_PID" ] || { echo 0; return; }
    # Fields after the ")" of the command name: utime is the 12th, stime the 13th.
    sed 's/.*) //' "/proc/$PROXY_PID/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}
status_kb() { # VmHWM or VmRSS of the proxy, kB
    [ -n "$PROXY_PID" ] || { echo 0; return; }
    awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PROXY_PID/status" 2>/dev/null
}

# --- the matrix -------------------------------------------------------------------
TABLE=()
row() { # proxy scheme size conns mode [rate: fixed offered load, req/s]
    local proxy=$1 scheme=$2 size=$3 conns=$4 mode=$5 rate=${6:-}
    local id="$proxy/$scheme/$size/$conns/$mode"
    [ -n "$rate" ] && id="$id/q$rate"
    [[ $id =~ $ROWS ]] || return 0
    local port=$HTTP_PORT path=/small.json
    [ "$scheme" = https ] && port=$HTTPS_PORT
    [ "$size" = 1m ] && path=/1m.bin
    local url="$scheme://127.0.0.1:$port$path?adid=$ADID&event=app_open"
    local args=(--no-tui --output-format json -c "$conns" --insecure)
    [ "$mode" = new ] && args+=(--disable-keepalive)
    local via=()
    [ "$proxy" = direct ] || via=(-x "http://127.0.0.1:$PROXY_PORT")
    args+=("${via[@]}")
    local warmup=""
    if [ -n "$rate" ]; then
        warmup=1
        args+=(-z "${RATE_DURATION}s" -q "$rate" --latency-correction)
    else
        args+=(-z "${DURATION}s")
    fi
    local fail_cols="| | | | |"
    [ -n "$rate" ] && fail_cols="| $rate | | | | | |"
    start_proxy "$proxy" || { echo "| $proxy | $scheme | $size | $conns | $mode | n/a $fail_cols start failed |"; return; }
    local t0 t1 perf_pid=""
    if [ -n "$warmup" ]; then
        "$OHA" --no-tui -z 1s -c "$conns" --insecure "${via[@]}" "$url" >/dev/null 2>&1 || true
    fi
    if [ -n "${PERF_DIR:-}" ] && [ "$proxy" = consentry ]; then
        perf record -F 999 ${PERF_ARGS:--g} -p "$PROXY_PID" -o "$PERF_DIR/${id//\//_}.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    t0=$(cpu_ticks)
    "$OHA" "${args[@]}" "$url" >"$WORK/oha.json" 2>"$WORK/oha.err"
    t1=$(cpu_ticks)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid"
    fi
    local hwm
    hwm=$(status_kb VmHWM)
    stop_proxy
    local direct_p99=""
    [ -n "$rate" ] && [ -f "$WORK/p99-direct-$scheme-$rate" ] && direct_p99=$(cat "$WORK/p99-direct-$scheme-$rate")
    python3 - "$WORK/oha.json" "$proxy" "$scheme" "$size" "$conns" "$mode" "$t0" "$t1" "$HZ" "${hwm:-0}" "$rate" "$direct_p99" "$WORK/p99-$proxy-$scheme-$rate" <<'EOF' || echo "| $proxy | $scheme | $size | $conns | $mode | n/a $fail_cols oha failed: $(tail -n 1 "$WORK/oha.err") |"
import json, sys
path, proxy, scheme, size, conns, mode, t0, t1, hz, hwm, rate, direct_p99, p99_out = sys.argv[1:]
d = json.load(open(path))
s = d["summary"]
ok = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if k.startswith("2"))
# Requests cut by the end of the run (-z) are not failures.
errs = sum(v for k, v in d.get("errorDistribution", {}).items() if "deadline" not in k)
bad = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
rps = ok / s["total"] if s.get("total") else 0
lp = d.get("latencyPercentiles", {})
ms = lambda v: "%.2f" % (v * 1000) if v is not None else "n/a"
cpu = (int(t1) - int(t0)) / int(hz)
cpu_req = ("%.3f" % (cpu * 1000 / ok)) if proxy != "direct" and ok else "–"
rss = ("%.0f" % (int(hwm) / 1024)) if proxy != "direct" else "–"
note = []
if errs: note.append("%d errors" % errs)
if bad: note.append("%d non-2xx" % bad)
p99 = lp.get("p99")
if not rate:
    print("| %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s |" % (
        proxy, scheme, size, conns, "keep-alive" if mode == "ka" else "new conn",
        rps, ms(lp.get("p50")), ms(p99), cpu_req, rss, ", ".join(note)))
    sys.exit(0)
if p99 is not None:
    open(p99_out, "w").write("%f" % p99)
added = "%.2f" % ((p99 - float(direct_p99)) * 1000) if p99 is not None and direct_p99 and proxy != "direct" else "–"
print("| %s | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s |" % (
    proxy, scheme, size, conns, "keep-alive" if mode == "ka" else "new conn", rate,
    rps, ms(lp.get("p50")), ms(p99), added, cpu_req, rss, ", ".join(note)))
EOF
}
# Requests/s of each matrix row by round ("ROUND/ROW-ID"), for the ratios.
declare -A RPS=()
CELLS=()
run_matrix() {
    local round=$1 scheme size conns mode proxy line cell
    for scheme in $SCHEMES; do
        for size in $SIZES; do
            for conns in $CONNS; do
                for mode in $MODES; do
                    cell="$scheme/$size/$conns/$mode"
                    [ "$round" = 1 ] && CELLS+=("$cell")
                    for proxy in $AVAILABLE; do
                        line=$(row "$proxy" "$scheme" "$size" "$conns" "$mode")
                        if [ -n "$line" ]; then
                            # The requests/s column, for a row that ran.
                            RPS["$round/$proxy/$cell"]=$(awk -F'|' '{ gsub(/ /, "", $7); print $7 }' <<<"$line")
                            if [ "$ROUNDS" -gt 1 ]; then
                                case $line in
                                *'|  |') line="${line%  |} round $round |" ;;
                                *) line="${line% |}; round $round |" ;;
                                esac
                            fi
                            TABLE+=("$line")
                            echo "$line" >&2
                        fi
                    done
                done
            done
        done
    done
}

# Cell by cell, consentry's rate over the no-op's and mitmdump's in each round.
print_round_ratios() {
    local cell round c h m pct=() xm=() hm=()
    for cell in "${CELLS[@]}"; do
        pct=() xm=() hm=()
        for round in $(seq "$ROUNDS"); do
            c=${RPS["$round/consentry/$cell"]:-} h=${RPS["$round/hudsucker/$cell"]:-}
            m=${RPS["$round/mitmdump/$cell"]:-}
            [[ $c =~ ^[0-9]+$ ]] || continue
            [[ $h =~ ^[1-9][0-9]*$ ]] && pct+=("$(awk -v a="$c" -v b="$h" 'BEGIN { printf "%.1f", 100 * a / b }')")
            if [[ $m =~ ^[1-9][0-9]*$ ]]; then
                xm+=("$(awk -v a="$c" -v b="$m" 'BEGIN { printf "%.1f", a / b }')")
                [[ $h =~ ^[0-9]+$ ]] && hm+=("$(awk -v a="$h" -v b="$m" 'BEGIN { printf "%.1f", a / b }')")
            fi
        done
        [ ${#pct[@]} -gt 0 ] || [ ${#xm[@]} -gt 0 ] || continue
        echo "- $cell:"
        [ ${#pct[@]} -gt 0 ] && echo "  consentry, % of the no-op hudsucker: ${pct[*]} (median $(median "${pct[@]}"))"
        [ ${#xm[@]} -gt 0 ] && echo "  consentry, × mitmdump: ${xm[*]} (median $(median "${xm[@]}"))"
        [ ${#hm[@]} -gt 0 ] && echo "  the no-op hudsucker, × mitmdump: ${hm[*]} (median $(median "${hm[@]}"))"
    done
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Fixed offered load: small responses, keep-alive, LOAD_CONNS connections.
LOAD_TABLE=()
run_load() {
    local scheme rate proxy line rates
    for scheme in $SCHEMES; do
        for proxy in $AVAILABLE; do
            rates=$RATES
            [ "$proxy" = mitmdump ] && rates=$MITM_RATES
            # direct at mitmdump's rates too: its "p99 added" needs them.
            [ "$proxy" = direct ] && rates="$RATES $MITM_RATES"
            for rate in $rates; do
                line=$(row "$proxy" "$scheme" small "$LOAD_CONNS" ka "$rate")
                if [ -n "$line" ]; then
                    LOAD_TABLE+=("$line")
                    echo "$line" >&2
                fi
            done
        done
    done
}

# --- special targets --------------------------------------------------------------
SPECIALS=()
special_idle() { # proxy: RSS with $IDLE idle intercepted TLS tunnels
    local proxy=$1
    start_proxy "$proxy" || return
    local base
    base=$(status_kb VmRSS)
    python3 "$HERE/proxy_helpers.py" idle --proxy "127.0.0.1:$PROXY_PORT" \
        --target "127.0.0.1:$HTTPS_PORT" --count "$IDLE" >"$WORK/idle.out" 2>"$WORK/idle.err" &
    local hp=$!
    PIDS+=("$hp")
    local i
    for i in $(seq 600); do
        grep -q '^open' "$WORK/idle.out" 2>/dev/null && break
        sleep 0.1
    done
    sleep 1
    local rss opened
    rss=$(status_kb VmRSS)
    opened=$(awk '/^open/ { print $2 }' "$WORK/idle.out")
    kill "$hp" 2>/dev/null
    wait "$hp" 2>/dev/null
    stop_proxy
    SPECIALS+=("| $proxy | ${opened:-0} idle intercepted TLS tunnels | RSS $(awk -v a="${base:-0}" 'BEGIN{printf "%.0f", a/1024}') MB idle → $(awk -v a="${rss:-0}" 'BEGIN{printf "%.0f", a/1024}') MB |")
}
special_upload() { # proxy: 1 GB upload through HTTPS interception, RSS growth
    local proxy=$1
    start_proxy "$proxy" || return
    local base
    base=$(status_kb VmHWM)
    local px=()
    [ "$proxy" = direct ] || px=(-x "http://127.0.0.1:$PROXY_PORT")
    local out
    out=$(head -c "$((UPLOAD_MB * 1000000))" /dev/zero |
        curl -sS -k --max-time 300 "${px[@]}" -T - -o /dev/null \
            -w '%{http_code} %{size_upload} %{time_total}' \
            "https://127.0.0.1:$HTTPS_PORT/upload/up.bin?adid=$ADID" 2>"$WORK/upload.err")
    rm -f "$WORK/dav/up.bin"
    local hwm
    hwm=$(status_kb VmHWM)
    stop_proxy
    read -r code sent secs <<<"$out"
    SPECIALS+=("| $proxy | ${UPLOAD_MB} MB upload (HTTPS, chunked) | HTTP ${code:-?}, $(awk -v b="${sent:-0}" -v s="${secs:-1}" 'BEGIN{printf "%.0f MB in %.1f s (%.0f MB/s)", b/1e6, s, b/1e6/s}'); peak RSS growth $(awk -v a="${hwm:-0}" -v b="${base:-0}" 'BEGIN{printf "%.1f", (a-b)/1024}') MB |")
}

# --- A/B of consentry builds ---------------------------------------------------------
thread_ticks() { # "analysis runtime": utime + stime of the proxy's threads, by name
    [ -n "$PROXY_PID" ] || { echo "0 0"; return; }
    local t
    for t in /proc/"$PROXY_PID"/task/*/stat; do
        cat "$t" 2>/dev/null
        echo
    done | awk '/\(/ {
        name = $0; sub(/^[^(]*\(/, "", name); sub(/\).*/, "", name)
        rest = $0; sub(/.*\) /, "", rest); split(rest, f, " ")
        if (name ~ /^consentry-analy/) a += f[12] + f[13]; else r += f[12] + f[13]
    } END { print a + 0, r + 0 }'
}
run_ab() {
    local pairs=${AB_PAIRS:-4} requests=${AB_REQUESTS:-40000} conns=${AB_CONNS:-50}
    local url="https://127.0.0.1:$HTTPS_PORT/small.json?adid=$ADID&event=app_open"
    local bin round a0 r0 a1 r1 secs
    echo "| round | binary | proxy ticks | analysis thread | runtime threads | µs CPU/req | req/s |"
    echo "|---:|---|---:|---:|---:|---:|---:|"
    for round in $(seq "$pairs"); do
        for bin in $AB; do
            CONSENTRY=$bin
            start_proxy consentry || continue
            read -r a0 r0 <<<"$(thread_ticks)"
            "$OHA" --no-tui --output-format json -n "$requests" -c "$conns" --insecure \
                -x "http://127.0.0.1:$PROXY_PORT" "$url" >"$WORK/oha.json" 2>"$WORK/oha.err"
            read -r a1 r1 <<<"$(thread_ticks)"
            stop_proxy
            secs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["total"])' "$WORK/oha.json" 2>/dev/null || echo 0)
            awk -v round="$round" -v bin="$bin" -v a="$((a1 - a0))" -v r="$((r1 - r0))" \
                -v n="$requests" -v hz="$HZ" -v secs="$secs" 'BEGIN {
                printf "| %d | %s | %d | %d | %d | %.1f | %.0f |\n", round, bin, a + r, a, r,
                    (a + r) / hz / n * 1e6, (secs > 0 ? n / secs : 0) }'
        done
    done | tee "$WORK/ab.md"
    echo
    echo "| binary | runs | mean proxy ticks | mean analysis | mean runtime | mean µs CPU/req | mean req/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk -F'|' '$3 ~ /[^ ]/ && $2 ~ /[0-9]/ {
        b = $3; gsub(/ /, "", b); if (!(b in n)) order[++k] = b
        n[b]++; t[b] += $4; a[b] += $5; r[b] += $6; u[b] += $7; q[b] += $8
    } END { for (i = 1; i <= k; i++) { b = order[i]
        printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f |\n", b, n[b], t[b]/n[b], a[b]/n[b], r[b]/n[b], u[b]/n[b], q[b]/n[b] } }' "$WORK/ab.md"
}
if [ -n "${AB:-}" ]; then
    for bin in $AB; do [ -x "$bin" ] || die "AB: $bin is not an executable"; done
    echo "proxy_compare.sh A/B $(date -u +%FT%TZ): $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    run_ab
    exit 0
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%FT%TZ)
for round in $(seq "$ROUNDS"); do
    run_matrix "$round"
done
[ -n "$RATES$MITM_RATES" ] && run_load
if [ "$SPECIAL" = 1 ]; then
    for p in $AVAILABLE; do
        [ "$p" = direct ] && continue
        special_idle "$p"
        echo "${SPECIALS[-1]:-}" >&2
    done
    for p in $AVAILABLE; do
        [ "$p" = mitmdump ] && continue # ~1 GB through Python takes minutes
        special_upload "$p"
        echo "${SPECIALS[-1]:-}" >&2
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "proxy_compare.sh $STARTED: ${DURATION} s per row (fixed-load rows: ${RATE_DURATION} s after a 1 s warm-up), $(nproc) cores, load average $LOAD_BEFORE (start) / $LOAD_AFTER (end); oha $("$OHA" --version 2>/dev/null | awk '{print $2}'), $(nginx -v 2>&1 | sed 's/.*: //'), mitmdump $("$MITMDUMP" --version 2>/dev/null | awk '/Mitmproxy/ {print $2}')"
if [ -f "$WORK/consentry-findings.jsonl" ]; then
    echo "consentry findings printed: $(wc -l <"$WORK/consentry-findings.jsonl")"
fi
echo
echo "| proxy | scheme | response | conns | connections | req/s | p50 ms | p99 ms | CPU ms/req | peak RSS MB | notes |"
echo "|---|---|---|---:|---|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${TABLE[@]}"
if [ "$ROUNDS" -gt 1 ]; then
    echo
    echo "Round by round (each round's rows ran one after another):"
    echo
    print_round_ratios
fi
if [ ${#LOAD_TABLE[@]} -gt 0 ]; then
    echo
    echo "Fixed offered load (oha -q RATE --latency-correction); p99 added = p99 − direct's p99 at the same scheme and rate:"
    echo
    echo "| proxy | scheme | response | conns | connections | offered req/s | req/s | p50 ms | p99 ms | p99 added ms | CPU ms/req | peak RSS MB | notes |"
    echo "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${LOAD_TABLE[@]}"
fi
if [ ${#SPECIALS[@]} -gt 0 ]; then
    echo
    echo "| proxy | special target | result |"
    echo "|---|---|---|"
    printf '%s\n' "${SPECIALS[@]}"
fi
