#!/usr/bin/env bash
# Replays a capture onto a network interface at set rates and has consentry's live tap
# and peer tools capture it there, side by side (issue 3: live interfaces at line rate).
#
# Usage (as root): benches/live_compare.sh FILE CASE NEEDLE
#   FILE    a pcap of Ethernet frames (e.g. from benches/gen_pcap.py --out)
#   CASE    its case file (gen_pcap.py --case-out)
#   NEEDLE  one identifier string in the capture (gen_pcap.py --id-needle-out)
# Env: CONSENTRY=path of the binary (default target/release/consentry, built with
#      --features live); RATES="500 1000 top" (Mbit/s offered by tcpreplay; top: as
#      fast as tcpreplay sends); TOOLS="tcpdump consentry consentry-noring
#      consentry-store suricata tshark" (default: these); BUFFER_MIB=32 (the
#      kernel capture buffer of consentry, tcpdump -B and tshark -B; Suricata keeps
#      its own AF_PACKET ring);
#      SETTLE=2 (seconds between the last packet sent and the stop signal);
#      KEEP=1 keeps each tool's output, standard error and timing in the work folder.
#
# Makes a network namespace of its own with a veth pair (receive offloads off, so
# every frame arrives as sent) and removes it on exit; nothing leaves the namespace.
# For each tool and rate: starts the tool capturing on one end, waits until it says it
# captures, replays FILE onto the other end with tcpreplay, waits SETTLE seconds,
# stops the tool with SIGINT (as Ctrl-C) and waits for it to exit. Tools:
#   tcpdump            -w /dev/null: libpcap's capture alone, the ceiling;
#   consentry          tap --format jsonl with its evidence ring (as deployed);
#   consentry-noring   the same with --no-ring;
#   consentry-store    the tap into a case directory made for each run (`consentry
#                      init --from-case CASE`): its ring in the directory's
#                      evidence/, every exchange and finding appended to its store;
#   suricata           the minimal configuration of benches/compare_pcap.sh and one
#                      content rule, AF_PACKET (TPACKET_V3), one worker thread;
#   tshark             -Y 'http contains "NEEDLE"' (dumpcap writes the packets to a
#                      temporary file that tshark reads: it drops nothing, but lags).
# Prints a markdown table: the rate tcpreplay reached, packets the tool received and
# dropped (its own counters: libpcap's, Suricata's), what it found, its CPU seconds
# (user+sys) and peak RSS, and how long after the last packet it had finished (stop
# signal and the tool's own flushing included). Needs tcpreplay, iproute2, ethtool.
set -u

if [ $# -ne 3 ]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
FILE=$1 CASE=$2 NEEDLE=$3
SCRIPT=live_compare.sh
[ -r "$FILE" ] || { echo "$SCRIPT: cannot read capture $FILE" >&2; exit 2; }
case "$NEEDLE" in *'"'* | *'\'* | *';'*)
    echo "$SCRIPT: the needle must not contain quotes, backslashes or ';'" >&2; exit 2;;
esac
[ "$(id -u)" = 0 ] || { echo "$SCRIPT: needs root (network namespace, raw capture)" >&2; exit 2; }
for tool in tcpreplay ip ethtool /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "$SCRIPT: needs $tool" >&2; exit 2; }
done
CONSENTRY=${CONSENTRY:-target/release/consentry}
RATES=${RATES:-500 1000 top}
TOOLS=" ${TOOLS:-tcpdump consentry consentry-noring consentry-store suricata tshark} "
BUFFER_MIB=${BUFFER_MIB:-32}
SETTLE=${SETTLE:-2}
want() { [[ $TOOLS == *" $1 "* ]]; }
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

WORK=$(mktemp -d "/tmp/$SCRIPT.XXXXXX")
NS=consentry-live-$$
cleanup() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    if [ -n "${KEEP:-}" ]; then
        echo "$SCRIPT: the tools' outputs are in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
ip netns add "$NS" || exit 2
ip -n "$NS" link add vsrc type veth peer name vtap || exit 2
for i in vsrc vtap; do
    ip -n "$NS" link set "$i" up || exit 2
    ip netns exec "$NS" ethtool -K "$i" gro off lro off >/dev/null 2>&1
done
in_ns() { ip netns exec "$NS" "$@"; }

. "$(dirname "$0")/suricata_minimal.sh"
{
    suricata_minimal_yaml "$WORK/suricata"
    cat <<EOF
runmode: workers
af-packet:
  - interface: vtap
    threads: 1
    cluster-id: 99
    cluster-type: cluster_flow
    defrag: yes
    tpacket-v3: yes
EOF
} >"$WORK/suricata.yaml"
needle_rule "$NEEDLE" >"$WORK/needle.rules"

# What the file gives when read, not captured: the reference for consentry's rows.
if want consentry || want consentry-noring || want consentry-store; then
    "$CONSENTRY" tap --read "$FILE" --case "$CASE" --format jsonl --no-ring \
        >"$WORK/read.out" 2>"$WORK/read.err" ||
        { echo "$SCRIPT: $CONSENTRY tap --read failed: $(tail -n 2 "$WORK/read.err")" >&2; exit 2; }
    REFERENCE=$(sed -n 's/^consentry: [0-9]* packets ([0-9]* bytes), \([0-9]* exchanges, [0-9]* findings\).*/\1/p' "$WORK/read.err")
fi

# Waits until OUT.out or OUT.err (Suricata writes to standard output) has a line
# matching REGEX (the tool captures), at most 60 s.
wait_ready() {
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q -E "$2" "$1.out" "$1.err" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

ROWS=()
# capture NAME READY_REGEX RECEIVED_CMD FOUND_CMD -- CMD...: one row per rate.
capture() {
    local name=$1 ready=$2 received=$3 found=$4 rate
    shift 5
    for rate in $RATES; do
        local out=$WORK/${name// /_}-$rate
        rm -rf "$WORK/ring" "$WORK/suricata" && mkdir -p "$WORK/ring" "$WORK/suricata"
        # A fresh case directory for a tool that needs one (consentry-store).
        [ -n "${PREPARE:-}" ] && eval "$PREPARE"
        # Not through in_ns: $! must be the process GNU time runs in (ip execs it).
        ip netns exec "$NS" /usr/bin/time -f '%e %U %S %M' -o "$out.time" "$@" >"$out.out" 2>"$out.err" &
        local timer=$!
        if ! wait_ready "$out" "$ready"; then
            echo "$SCRIPT: $name did not start: $(tail -n 3 "$out.err" | tr '\n' ' ')" >&2
            kill -9 $(pgrep -P $timer) 2>/dev/null
            wait $timer
            ROWS+=("| $name | $rate | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        fi
        local speed=(--mbps="$rate")
        [ "$rate" = top ] && speed=(--topspeed)
        in_ns tcpreplay "${speed[@]}" -i vsrc "$FILE" >"$out.replay" 2>&1
        local sent_at
        sent_at=$(date +%s.%N)
        sleep "$SETTLE"
        # GNU time ignores SIGINT itself: the signal goes to the tool it runs.
        kill -INT $(pgrep -P $timer) 2>/dev/null
        wait $timer
        local done_at
        done_at=$(date +%s.%N)
        local mbps packets rx drops what
        mbps=$(sed -n 's/.*Rated: .* \([0-9.]*\) Mbps.*/\1/p' "$out.replay" | head -n 1)
        packets=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$out.replay" | head -n 1)
        read -r rx drops < <(eval "$received" 2>/dev/null)
        what=$(eval "$found" 2>/dev/null | tr -d '\n')
        ROWS+=("$(awk -v l="$(tail -n 1 "$out.time")" -v name="$name" -v rate="$rate" \
            -v mbps="${mbps:-?}" -v packets="${packets:-?}" -v rx="${rx:--}" \
            -v drops="${drops:--}" -v what="${what:-?}" -v sent="$sent_at" -v done="$done_at" 'BEGIN {
            split(l, t, " ")
            printf "| %s | %s | %s | %s | %s | %s | %s | %.2f | %.0f | %.1f |", name, rate, mbps,
                packets, rx, drops, what, t[2] + t[3], t[4] / 1024, done - sent
        }')")
    done
}

# libpcap's counters as consentry prints them: received less dropped, dropped.
consentry_received() {
    sed -n 's/^consentry: libpcap received \([0-9]*\), kernel dropped \([0-9]*\), interface dropped \([0-9]*\)$/\1 \2 \3/p' "$1" |
        awk '{ print $1 - $2 - $3, $2 + $3 }'
}
consentry_found() {
    sed -n 's/^consentry: [0-9]* packets ([0-9]* bytes), \([0-9]* exchanges, [0-9]* findings\).*/\1/p' "$1"
}

if want tcpdump; then
    capture tcpdump "listening on" \
        "echo \$(sed -n 's/^\([0-9]*\) packets captured/\1/p' \$out.err) \$(sed -n 's/^\([0-9]*\) packets dropped by kernel/\1/p' \$out.err)" \
        "echo -" -- tcpdump -n -B $((BUFFER_MIB * 1024)) -i vtap -w /dev/null
fi
for variant in consentry consentry-noring consentry-store; do
    want $variant || continue
    ring=(--ring-dir "$WORK/ring")
    case_file=$CASE
    PREPARE=
    [ $variant = consentry-noring ] && ring=(--no-ring)
    if [ $variant = consentry-store ]; then
        ring=()
        case_file=$WORK/case/consentry.toml
        PREPARE='rm -rf "$WORK/case" && "$CONSENTRY" init "$WORK/case" --from-case "$CASE" >/dev/null'
    fi
    capture $variant "Ctrl-C to stop" "consentry_received \$out.err" "consentry_found \$out.err" -- \
        "$CONSENTRY" tap --interface vtap --case "$case_file" --format jsonl --buffer-mib "$BUFFER_MIB" "${ring[@]}"
    PREPARE=
done
if want suricata && command -v suricata >/dev/null; then
    SV=$(suricata -V 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p')
    capture "suricata ${SV:-?}" "Engine started" \
        "sed -n 's/.*vtap: packets: \([0-9]*\), drops: \([0-9]*\).*/\1 \2/p' \$out.out \$out.err | awk '{ print \$1 - \$2, \$2 }'" \
        "echo \$(wc -l <\$WORK/suricata/fast.log) alerts" -- \
        suricata -v -c "$WORK/suricata.yaml" -S "$WORK/needle.rules" --af-packet=vtap -k none -l "$WORK/suricata"
fi
if want tshark && command -v tshark >/dev/null; then
    capture tshark "Capturing on" "echo - -" "echo \$(wc -l <\$out.out) requests" -- \
        tshark -n -B "$BUFFER_MIB" -i vtap -Y "http contains \"$NEEDLE\""
fi

echo "capture: $FILE ($(awk -v s="$(stat -c %s "$FILE")" 'BEGIN { printf "%.1f", s / 1e6 }') MB); needle: $NEEDLE; $(nproc) cores; buffer $BUFFER_MIB MiB; load average before: $LOAD"
[ -n "${REFERENCE:-}" ] && echo "consentry tap --read of the file: $REFERENCE"
echo
echo "| tool | offered Mbit/s | sent Mbit/s | packets sent | received | dropped | found | CPU s | peak RSS MB | done s after the last packet |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
