#!/usr/bin/env python3
"""Compares consentry's JA3 and JA4 of ClientHellos with tshark's, nDPI's and FoxIO's.

For every capture under the given directories, `consentry exchanges --format jsonl`
gives each TLS or QUIC exchange's `tls.ja3` and `tls.ja4` with its client and
server address. The references:
  - tshark (`tls.handshake.ja3` of every ClientHello over TCP; Wireshark 4.0 has no
    JA4 and no JA3 over QUIC);
  - nDPI's expected output beside a capture (`NAME.ndpi-expected.out`, as in nDPI's
    own test data): per flow `[JA3C: …]` and `[JA4: …]`, TCP and QUIC;
  - with `--foxio DIR`, JA4's own reference tool (a checkout of FoxIO-LLC/ja4:
    `DIR/pcap/NAME` and the Rust tool's snapshot of its output,
    `DIR/rust/ja4/src/snapshots/ja4__insta@NAME.snap`: per stream `src`, `dst`,
    `ja4`, TCP and QUIC), or with `--ja4-tool BIN` that tool run on every capture
    (`cargo build --release` in the checkout's `rust/`; it reads through tshark).
Per capture each reference is compared by client-server address pair (a connection
that carried several exchanges counts once): the pair agrees when both give it a
common value, differs (`≠`) when both read it and share none; a value only the
reference gives is listed with `-` (tshark and FoxIO's tool also fingerprint a second
ClientHello after a HelloRetryRequest, consentry the connection's first), one only
consentry gives with `+` (JA3 over QUIC, which tshark does not compute).

Usage: benches/fingerprint_check.py [--consentry BIN] [--tshark BIN] [--foxio DIR]
                                   [--ja4-tool BIN] [DIR …]
Prints the differences per capture and one summary line per reference; exit status 0
when no fingerprint differs (a hello only one side read is counted, not a failure).
"""

import argparse
import os
import re
import subprocess
import sys

import pair_compare
from pair_compare import captures, consentry_exchanges


def consentry_fingerprints(binary, path):
    """{(kind, client, server, value)} for kind in ja3, ja4."""
    out = set()
    for x in consentry_exchanges(binary, path):
        tls = x.get("tls") or {}
        quic = (tls.get("ja4") or "").startswith("q")
        if tls.get("ja3"):
            out.add(("ja3q" if quic else "ja3", x.get("client"), x.get("server"), tls["ja3"]))
        if tls.get("ja4"):
            out.add(("ja4", x.get("client"), x.get("server"), tls["ja4"]))
    return out


def tshark_ja3(binary, path):
    run = subprocess.run(
        [binary, "-n", "-r", path, "-Y", "tls.handshake.type == 1 && tcp",
         "-T", "fields", "-E", "separator=|",
         "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
         "-e", "tls.handshake.ja3"],
        capture_output=True, text=True, timeout=600,
    )
    out = set()
    for line in run.stdout.splitlines():
        f = line.split("|")
        if len(f) != 5 or not f[4]:
            continue
        # Tunnels and ICMP errors give several addresses; the innermost is last.
        client = (f[0] or f[1]).split(",")[-1]
        server = (f[2] or f[3]).split(",")[-1]
        for ja3 in f[4].split(","):
            out.add(("ja3", client, server, ja3))
    return out


FLOW = re.compile(r"^\s*\d+\s+(TCP|UDP)\s+(\S+)\s+<?->\s+(\S+)\s")


def split_address(a):
    """`1.2.3.4:443` or `[::1]:443` → `1.2.3.4` / `::1`."""
    if a.startswith("["):
        return a[1:a.index("]")]
    return a.rsplit(":", 1)[0]


def unordered(f, ours):
    """nDPI prints some flows server first: turn such a flow round when consentry
    read the pair the other way."""
    kind, a, b, value = f
    if not any(o[1] == a and o[2] == b for o in ours) and any(
        o[1] == b and o[2] == a for o in ours
    ):
        return (kind, b, a, value)
    return f


def ndpi_fingerprints(path):
    expected = path + ".ndpi-expected.out"
    out = set()
    if not os.path.exists(expected):
        return None
    with open(expected, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = FLOW.match(line)
            if not m:
                continue
            client, server = split_address(m.group(2)), split_address(m.group(3))
            for kind, field in (("ja3", "JA3C"), ("ja4", "JA4")):
                v = re.search(r"\[" + field + r": ([^\]]+)\]", line)
                if v:
                    out.add((kind, client, server, v.group(1).strip()))
    return out


def foxio_yaml(text):
    """{("ja4", src, dst, ja4)} of the YAML FoxIO's `ja4` tool writes (one list item
    per stream: `src`, `dst`, `ja4`; with several hellos, `ja4.1`, `ja4.2` …)."""
    out = set()
    stream = {}
    for line in text.splitlines():
        m = re.match(r"^(- |  )([\w.]+): (.*)$", line)
        if not m:
            continue
        if m.group(1) == "- ":
            stream = {}
        key, value = m.group(2), m.group(3).strip().strip("'\"")
        stream[key] = value
        if re.fullmatch(r"ja4(\.\d+)?", key) and "src" in stream and "dst" in stream:
            out.add(("ja4", stream["src"], stream["dst"], value))
    return out


def foxio_fingerprints(foxio, tool, path):
    """JA4 by FoxIO's reference tool: run (`--ja4-tool`), or its snapshot tests
    beside `pcap/` in a checkout (`rust/ja4/src/snapshots/ja4__insta@NAME.snap`)."""
    if tool:
        run = subprocess.run([tool, path], capture_output=True, text=True, timeout=600)
        return foxio_yaml(run.stdout) if run.returncode == 0 else None
    if not foxio:
        return None
    expected = os.path.join(foxio, "rust", "ja4", "src", "snapshots",
                            "ja4__insta@" + os.path.basename(path) + ".snap")
    if not os.path.exists(expected):
        return None
    with open(expected, encoding="utf-8") as f:
        return foxio_yaml(f.read())


def compare(name, ours, theirs, totals, key):
    return pair_compare.compare(f"{name} vs {key}", ours, theirs,
                                totals.setdefault(key, [0, 0, 0, 0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("--tshark", default="tshark")
    ap.add_argument("--foxio", help="a checkout of FoxIO-LLC/ja4 (its pcap/ and test data)")
    ap.add_argument("--ja4-tool", help="FoxIO's `ja4` binary (built from that checkout's rust/), "
                    "run on every capture")
    ap.add_argument("dirs", nargs="*")
    args = ap.parse_args()
    totals = {}
    ok = True
    dirs = args.dirs + ([os.path.join(args.foxio, "pcap")] if args.foxio else [])
    for path in captures(dirs):
        ours = consentry_fingerprints(args.consentry, path)
        tcp_ja3 = {f for f in ours if f[0] == "ja3"}
        any_ja3 = {("ja3",) + f[1:] for f in ours if f[0] in ("ja3", "ja3q")}
        ja4 = {f for f in ours if f[0] == "ja4"}
        ok &= compare(path, tcp_ja3, tshark_ja3(args.tshark, path), totals, "tshark ja3")
        ndpi = ndpi_fingerprints(path)
        if ndpi is not None:
            ndpi = {unordered(f, any_ja3 | ja4) for f in ndpi}
            ok &= compare(path, any_ja3, {f for f in ndpi if f[0] == "ja3"}, totals, "nDPI ja3")
            ok &= compare(path, ja4, {f for f in ndpi if f[0] == "ja4"}, totals, "nDPI ja4")
        foxio = foxio_fingerprints(args.foxio, args.ja4_tool, path)
        if foxio is not None:
            ok &= compare(path, ja4, foxio, totals, "FoxIO ja4")
    for key, (same, differ, missing, extra) in sorted(totals.items()):
        print(f"{key}: client-server pairs: {same} agree, {differ} differ, "
              f"{missing} read by the reference alone, {extra} by consentry alone")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
