#!/usr/bin/env bash
# Checks that a capture cut into pieces reads as the capture in one file: for every
# capture under DIR, `consentry exchanges` of the file against `consentry exchanges`
# of its pieces (cut by editcap -c into about PIECES files, given in ORDER).
#
# Usage: benches/split_check.sh DIR
# Env: CONSENTRY=path of the binary (default target/debug/consentry),
#      PIECES=n (default 5): about n pieces a capture; 0 cuts into one-packet files,
#        then only captures of at most MAX_PACKETS (default 400) packets are cut,
#      ORDER=given|reversed|shuffled (default shuffled: a fixed shuffle),
#      SEPARATELY=1: read each piece on its own instead (the pieces' exchanges put
#        together), to see what reading them as one capture changes,
#      KEEP=dir: keep the pieces and outputs there (default: a temporary directory).
# Needs editcap and capinfos (Debian's wireshark-common or tshark) and jq.
#
# Exchanges are compared without `id` and `evidence`, which name the file an exchange
# came from. Prints SAME or DIFF with the numbers of exchanges for each capture, then
# a count of each. A capture whose packets are not in time order may differ when cut
# into one-packet files: its pieces are then read in time order, as mergecap would.
set -euo pipefail

dir=${1:?usage: benches/split_check.sh DIR}
bin=${CONSENTRY:-target/debug/consentry}
pieces=${PIECES:-5}
max_packets=${MAX_PACKETS:-400}
order=${ORDER:-shuffled}
bin=$(realpath "$bin")
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
[ -z "${KEEP:-}" ] && trap 'rm -rf "$work"' EXIT

in_order() {
    case $order in
    given) cat ;;
    reversed) sort -r ;;
    shuffled) shuf --random-source=<(yes 42) ;;
    *) echo "ORDER must be given, reversed or shuffled" >&2; exit 2 ;;
    esac
}

exchanges() {
    "$bin" exchanges --format jsonl "$@" 2>/dev/null | jq -c 'del(.id) | del(.evidence)' | sort
}

same=0 differ=0 skipped=0 i=0
while IFS= read -r -d '' capture; do
    i=$((i + 1))
    packets=$(capinfos -Mc "$capture" 2>/dev/null | awk '/Number of packets/ {print $NF}')
    if [ -z "$packets" ] || [ "$packets" -lt 2 ] ||
        { [ "$pieces" -eq 0 ] && [ "$packets" -gt "$max_packets" ]; }; then
        skipped=$((skipped + 1))
        continue
    fi
    per_piece=1
    [ "$pieces" -gt 0 ] && per_piece=$(((packets + pieces - 1) / pieces))
    out=$work/$i
    mkdir -p "$out/pieces"
    if ! editcap -F pcapng -c "$per_piece" "$capture" "$out/pieces/p.pcapng" 2>/dev/null; then
        skipped=$((skipped + 1))
        continue
    fi
    exchanges "$capture" >"$out/whole.jsonl"
    mapfile -t files < <(find "$out/pieces" -type f | sort | in_order)
    if [ -n "${SEPARATELY:-}" ]; then
        for f in "${files[@]}"; do exchanges "$f"; done | sort >"$out/pieces.jsonl"
    else
        exchanges "${files[@]}" >"$out/pieces.jsonl"
    fi
    counts="$(wc -l <"$out/whole.jsonl") $(wc -l <"$out/pieces.jsonl")"
    if cmp -s "$out/whole.jsonl" "$out/pieces.jsonl"; then
        same=$((same + 1))
        echo "SAME ${#files[@]} pieces, $counts exchanges: $capture"
    else
        differ=$((differ + 1))
        echo "DIFF ${#files[@]} pieces, $counts exchanges: $capture"
    fi
done < <(find "$dir" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \
    -o -name '*.pcap.gz' -o -name '*.pcapng.gz' \) -print0 | sort -z)
echo "same: $same, different: $differ, not cut (under two packets, too many, or editcap failed): $skipped"
