#!/usr/bin/env bash
# Counts the 802.11 frames consentry and tshark decrypt in the same captures with the
# same keys: the check of consentry's WEP/WPA decryption against Wireshark's.
#
# Usage: benches/compare_wlan.sh KEYS CAPTURE...
#   KEYS     802.11 keys in Wireshark's format (80211_keys): consentry gets it as
#            --wlan-keys, tshark as the 80211_keys table of a throwaway profile.
#   CAPTURE  monitor-mode captures (pcap or pcapng, gzip-compressed ones too).
# Env: CONSENTRY=path of the binary (default: this checkout's target/release/consentry).
#
# Prints a markdown table, one row per capture: its protected data frames (tshark,
# wlan.fc.protected == 1), the frames tshark decrypts (those it then reads as LLC:
# wlan.fc.protected == 1 && llc), the frames consentry decrypts (its "N frames
# decrypted" note, MIC or ICV checked; 0 without a note), and the handshakes consentry
# matched to a key. A tool that is missing or fails prints n/a.
set -u

if [ $# -lt 2 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
KEYS=$1
shift
[ -r "$KEYS" ] || { echo "compare_wlan.sh: cannot read keys file $KEYS" >&2; exit 2; }
CONSENTRY=${CONSENTRY:-$(dirname "$0")/../target/release/consentry}
[ -x "$CONSENTRY" ] || { echo "compare_wlan.sh: no consentry binary at $CONSENTRY (cargo build --release, or set CONSENTRY)" >&2; exit 2; }

profile=$(mktemp -d)
unpacked=$(mktemp -d)
trap 'rm -rf "$profile" "$unpacked"' EXIT
mkdir -p "$profile/wireshark"
# tshark takes the table as it is; comments are Wireshark's own syntax too.
cp "$KEYS" "$profile/wireshark/80211_keys"

tshark_count() { # FILTER FILE
    if ! command -v tshark > /dev/null; then
        echo n/a
        return
    fi
    XDG_CONFIG_HOME=$profile tshark -o wlan.enable_decryption:TRUE -r "$2" -Y "$1" \
        2> /dev/null | wc -l
}

echo "| capture | protected frames | tshark decrypts | consentry decrypts | consentry handshakes |"
echo "|---|---|---|---|---|"
for capture in "$@"; do
    file=$capture
    case "$capture" in
    *.gz)
        file=$unpacked/$(basename "${capture%.gz}")
        gzip -dc "$capture" > "$file" || { echo "| $(basename "$capture") | n/a | n/a | n/a | n/a |"; continue; }
        ;;
    esac
    protected=$(tshark_count 'wlan.fc.protected == 1' "$file")
    decrypted=$(tshark_count 'wlan.fc.protected == 1 && llc' "$file")
    # No WPA note: nothing was protected, or nothing came of it.
    if stderr=$("$CONSENTRY" exchanges "$file" --wlan-keys "$KEYS" --format jsonl 2>&1 > /dev/null); then
        note=$(printf '%s\n' "$stderr" | grep -o 'WPA: .*' | head -n 1)
        ours=$(printf '%s' "$note" | grep -o '[0-9]* frames decrypted' | grep -o '^[0-9]*')
        handshakes=$(printf '%s' "$note" | grep -o '[0-9]* handshakes with a given key' | grep -o '^[0-9]*')
        ours=${ours:-0} handshakes=${handshakes:-0}
    else
        ours=n/a handshakes=n/a
    fi
    echo "| $(basename "$capture") | $protected | $decrypted | $ours | $handshakes |"
done
