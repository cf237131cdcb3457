#!/usr/bin/env bash
# Times consentry and peer tools side by side on one capture (issue 3 benchmarks).
#
# Usage: benches/compare_pcap.sh FILE CASE NEEDLE
#   FILE    a pcap (e.g. from benches/gen_pcap.py --out)
#   CASE    its case file (gen_pcap.py --case-out)
#   NEEDLE  one identifier string in the capture (gen_pcap.py --id-needle-out, read it
#           with "$(cat FILE.needle)")
# Env: CONSENTRY=path of the binary (default target/release/consentry),
#      RUNS=n (default 1): n rounds, each running every tool once (interleaved, so
#      that the machine's drift moves all alike); each tool's run with least CPU is
#      kept, and with n >= 2 the ratios of consentry-j1's rate per CPU-second to
#      each tool's, round by round, follow the table;
#      TOOLS="cat consentry consentry-j1 consentry-j1-cache tshark suricata ngrep"
#      (default: these) picks the tools (consentry: default threads; consentry-j1:
#      -j 1, one thread; consentry-j1-cache: -j 1 reading through the page cache
#      like the peers, --no-direct-io; the file is in the page cache after the
#      first tool read it, so the other two read it through the cache as well).
#      Not in the default: suricata-stock, the same rule under the installed
#      /etc/suricata/suricata.yaml (eve.json and its protocol logs on, as a
#      Suricata user runs it); consentry-pgo, consentry-pgo-j1, consentry-pgo-j1-cache,
#      the same three runs of the profile-guided build (benches/pgo_build.sh), whose
#      path CONSENTRY_PGO gives (default target/pgo/release/consentry);
#      WLAN_KEYS=FILE: 802.11 keys in Wireshark's format (e.g. from
#      benches/wrap_wpa2.py) for a WPA-protected monitor-mode capture: consentry gets
#      --wlan-keys FILE, tshark each line as a uat:80211_keys entry with decryption on;
#      Suricata and ngrep do not decrypt 802.11 and find nothing in such a file.
#
# Runs, each under /usr/bin/time -f '%e %U %S %M': cat (the ceiling), consentry analyze
# (jsonl findings), tshark -Y 'http contains "NEEDLE"', Suricata single-threaded with
# one content rule (raw stream: sees identifiers split across segments), ngrep (per
# packet: does not). Prints a markdown table: wall s, CPU s (user+sys), MB/s wall,
# MB/s per CPU-second, peak RSS MB, and what each found (findings / matching packets
# or requests / alerts). MB = 10^6 bytes. A tool that is missing or fails prints n/a.
set -u

if [ $# -ne 3 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
FILE=$1 CASE=$2 NEEDLE=$3
[ -r "$FILE" ] || { echo "compare_pcap.sh: cannot read capture $FILE" >&2; exit 2; }
case "$NEEDLE" in *'"'* | *'\'* | *';'*)
    echo "compare_pcap.sh: the needle must not contain quotes, backslashes or ';'" >&2; exit 2;;
esac
CONSENTRY=${CONSENTRY:-target/release/consentry}
CONSENTRY_PGO=${CONSENTRY_PGO:-target/pgo/release/consentry}
RUNS=${RUNS:-1}
TOOLS=" ${TOOLS:-cat consentry consentry-j1 consentry-j1-cache tshark suricata ngrep} "
want() { [[ $TOOLS == *" $1 "* ]]; }
WLAN=() TSHARK_WLAN=()
if [ -n "${WLAN_KEYS:-}" ]; then
    [ -r "$WLAN_KEYS" ] || { echo "compare_pcap.sh: cannot read WLAN_KEYS $WLAN_KEYS" >&2; exit 2; }
    WLAN=(--wlan-keys "$WLAN_KEYS")
    TSHARK_WLAN=(-o wlan.enable_decryption:TRUE)
    while IFS= read -r line; do
        case $line in '' | '#'*) continue ;; esac
        TSHARK_WLAN+=(-o "uat:80211_keys:$line")
    done <"$WLAN_KEYS"
fi
. "$(dirname "$0")/timing.sh"
timing_init compare_pcap.sh "$FILE"

# Suricata: a minimal configuration (alerts to fast.log only; no protocol logs) and
# one content rule matched on the reassembled TCP stream.
. "$(dirname "$0")/suricata_minimal.sh"
suricata_minimal_yaml "$WORK/suricata" >"$WORK/suricata.yaml"
mkdir -p "$WORK/suricata"
needle_rule "$NEEDLE" >"$WORK/needle.rules"

# Lines of FILE, followed by UNIT: the "found" column.
count_lines() { echo "$(wc -l <"$1") $2"; }
count_eve_alerts() { echo "$(grep -c '"event_type":"alert"' "$1") alerts"; }

# One round: every tool once (timing_rounds runs RUNS rounds).
tools_once() {
    # cat writes to /dev/null: the ceiling is reading the file, not writing a copy of it
    # (run() keeps every tool's stdout in $WORK, which for cat is a 500 MB write).
    want cat && run cat "echo -" -- sh -c 'exec cat -- "$1" >/dev/null' cat "$FILE"
    for variant in consentry consentry-j1 consentry-j1-cache \
        consentry-pgo consentry-pgo-j1 consentry-pgo-j1-cache; do
        if ! want $variant; then
            continue
        fi
        threads=()
        case $variant in
        *-j1) threads=(-j 1) ;;
        *-j1-cache) threads=(-j 1 --no-direct-io) ;;
        esac
        bin=$CONSENTRY bin_var=CONSENTRY
        case $variant in consentry-pgo*) bin=$CONSENTRY_PGO bin_var=CONSENTRY_PGO ;; esac
        if "$bin" --version >/dev/null 2>&1; then
            run $variant "count_lines '$WORK/$variant.out' findings" -- \
                "$bin" analyze "${threads[@]}" "${WLAN[@]}" --case "$CASE" "$FILE" --format jsonl
        else
            missing $variant "no consentry binary at $bin (set $bin_var)"
        fi
    done
    if ! want tshark; then
        :
    elif command -v tshark >/dev/null; then
        run tshark "count_lines '$WORK/tshark.out' requests" -- \
            tshark -n "${TSHARK_WLAN[@]}" -r "$FILE" -Y "http contains \"$NEEDLE\""
    else
        na_row tshark
    fi
    if ! want suricata; then
        :
    elif command -v suricata >/dev/null; then
        SV=$(suricata -V 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p')
        run "suricata ${SV:-?}" "count_lines '$WORK/suricata/fast.log' alerts" -- \
            suricata -c "$WORK/suricata.yaml" -S "$WORK/needle.rules" --runmode single -k none \
            -r "$FILE" -l "$WORK/suricata"
    else
        na_row suricata
    fi
    STOCK_YAML=/etc/suricata/suricata.yaml
    if ! want suricata-stock; then
        :
    elif command -v suricata >/dev/null && [ -r "$STOCK_YAML" ]; then
        mkdir -p "$WORK/suricata-stock"
        # The stock eve.json appends: each run starts from an empty log directory.
        run "suricata-stock" "count_eve_alerts '$WORK/suricata-stock/eve.json'" -- \
            sh -c 'rm -f -- "$4"/*; exec suricata -c "$1" -S "$2" --runmode single -k none -r "$3" -l "$4"' \
            sh "$STOCK_YAML" "$WORK/needle.rules" "$FILE" "$WORK/suricata-stock"
    else
        na_row suricata-stock
    fi
    if ! want ngrep; then
        :
    elif command -v ngrep >/dev/null; then
        run ngrep "echo \$(grep -c '^[TU] ' '$WORK/ngrep.out') packets" -- \
            ngrep -q -I "$FILE" "$NEEDLE"
    else
        na_row ngrep
    fi
}
timing_rounds tools_once

echo "capture: $FILE ($MB MB); needle: $NEEDLE; rounds: $RUNS (every tool once a round; least CPU kept); $(nproc) cores; load average before: $LOAD"
echo
print_rows
print_paired consentry-j1
