#!/usr/bin/env bash
# Peak memory of the pcap tap under floods of uploads in progress at once (README,
# "Memory under floods of uploads"): the captures of benches/gen_body_flood.py, each
# shape in turn, through `consentry exchanges` (the tap without the analysis; and
# tshark with HTTP reassembly, as a Wireshark user would look at such a file, unless
# TOOLS says otherwise).
#
# Usage: benches/flood_memory.sh [DIR]
#   DIR  where the captures are written (default: a temporary directory, removed)
# Env: CONSENTRY=path of the binary (default target/release/consentry),
#      CONNECTIONS=n (default 1000), BODY=bytes per connection (default 1000000),
#      CLAIM_CONNECTIONS=n for the `claim` shape (default 20000: 10 body bytes each),
#      SYN_CONNECTIONS=n for the `syn` shape (default 100000, the flow table's size),
#      TLS_CONNECTIONS=n for the `tls` shape (default 20000; consentry reads it with
#      an empty key log, so that every TLS connection gets a decryptor),
#      HEAD_CONNECTIONS=n for the `head` shape (default 16000, each sending 60 000
#      bytes of a head that never ends: under the parser's 64 KiB limit per head),
#      HPACK_CONNECTIONS=n for the `hpack` shape (default 16000, each filling its
#      HTTP/2 header table with 60 000 bytes; tshark reads port 80 as HTTP/2),
#      DNS_CONNECTIONS=n for the `dns` shape (default 16000, each receiving 60 000
#      bytes of a DNS-over-TCP answer announced as 65 535),
#      SHAPES="open pending claim syn tls raw head hpack dns" (default: these),
#      TOOLS="consentry tshark".
# Prints a markdown table: shape, capture MB, tool, wall s, CPU s, peak RSS MB, and
# how many exchanges carry the anomaly of a limit met: `message-memory-limit`
# (`payload-not-searched` for the shape raw).
set -euo pipefail
cd "$(dirname "$0")/.."
CONSENTRY=${CONSENTRY:-target/release/consentry}
CONNECTIONS=${CONNECTIONS:-1000}
CLAIM_CONNECTIONS=${CLAIM_CONNECTIONS:-20000}
SYN_CONNECTIONS=${SYN_CONNECTIONS:-100000}
TLS_CONNECTIONS=${TLS_CONNECTIONS:-20000}
HEAD_CONNECTIONS=${HEAD_CONNECTIONS:-16000}
HPACK_CONNECTIONS=${HPACK_CONNECTIONS:-16000}
DNS_CONNECTIONS=${DNS_CONNECTIONS:-16000}
BODY=${BODY:-1000000}
SHAPES=${SHAPES:-open pending claim syn tls raw head hpack dns}
TOOLS=${TOOLS:-consentry tshark}
if [ $# -ge 1 ]; then
    dir=$1
    mkdir -p "$dir"
else
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi

echo "| shape | connections | capture MB | tool | wall s | CPU s | peak RSS MB | limit anomalies |"
echo "|---|---:|---:|---|---:|---:|---:|---:|"
for shape in $SHAPES; do
    pcap=$dir/flood-$shape.pcap
    body=$BODY
    conns=$CONNECTIONS
    case $shape in
        claim) body=10; conns=$CLAIM_CONNECTIONS ;;
        syn) conns=$SYN_CONNECTIONS ;;
        tls) conns=$TLS_CONNECTIONS ;;
        head) body=60000; conns=$HEAD_CONNECTIONS ;;
        hpack) body=60000; conns=$HPACK_CONNECTIONS ;;
        dns) body=60000; conns=$DNS_CONNECTIONS ;;
    esac
    python3 benches/gen_body_flood.py --out "$pcap" --connections "$conns" \
        --body "$body" --shape "$shape"
    mb=$(( $(stat -c %s "$pcap") / 1000000 ))
    for tool in $TOOLS; do
        out=$dir/$tool-$shape.out
        case $tool in
            consentry)
                cmd=("$CONSENTRY" exchanges "$pcap" --format jsonl)
                if [ "$shape" = tls ]; then
                    : >"$dir/empty.keylog"
                    cmd+=(--keylog "$dir/empty.keylog")
                fi ;;
            tshark)
                command -v tshark >/dev/null || continue
                cmd=(tshark -r "$pcap" -Y http.request -T fields -e http.content_length)
                if [ "$shape" = hpack ]; then
                    cmd=(tshark -r "$pcap" -d tcp.port==80,http2 -Y http2.header -T fields -e frame.number)
                fi
                if [ "$shape" = dns ]; then
                    cmd=(tshark -r "$pcap" -Y dns -T fields -e dns.qry.name)
                fi ;;
            *) echo "unknown tool $tool" >&2; exit 2 ;;
        esac
        /usr/bin/time -f '%e %U %S %M' -o "$dir/time" "${cmd[@]}" >"$out" 2>/dev/null
        read -r wall user sys rss <"$dir/time"
        cut=-
        anomaly=message-memory-limit
        [ "$shape" = raw ] && anomaly=payload-not-searched
        [ "$shape" = hpack ] && anomaly=h2-hpack-error
        [ "$tool" = consentry ] && [ "$shape" != dns ] && cut=$(grep -c "$anomaly" "$out" || true)
        cpu=$(echo "$user + $sys" | bc)
        echo "| $shape | $conns | $mb | $tool | $wall | $cpu | $(( rss / 1024 )) | $cut |"
    done
done
