#!/usr/bin/env python3
"""Compares the server certificates consentry reads from TLS handshakes with tshark's.

For every capture under the given directories, `consentry exchanges --format jsonl`
gives each TLS or QUIC exchange's `tls.server_certificate` (its `sha256`, the SHA-256
of the leaf certificate's DER bytes) with its client and server address; tshark gives
the bytes of every certificate of every Certificate message
(`tls.handshake.certificate`, the first one the leaf; per TCP stream or QUIC
connection the first message, the server's), hashed here the same way. Both run
without a key log and, when an oracle file of the shared test data
(`expected/NAME.*.tshark.json`) names one for the capture or one lies beside it (see
`keylogs`), with it (tshark then reads TLS 1.3's and QUIC's encrypted certificates
too).
Compared per client-server address pair (a connection that carried several exchanges
counts once): the pair agrees when both give the same leaf, differs (`≠`) when both
read one and share none; a leaf only tshark reads is listed with `-`, one only
consentry reads with `+`.

Usage: benches/certificate_check.py [--consentry BIN] [--tshark BIN] [DIR …]
Prints the differences per capture and one summary line; exit status 0 when no
certificate differs (a certificate only one side read is counted, not a failure).
"""

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys

import pair_compare
from pair_compare import captures, consentry_exchanges


def keylogs(path):
    """The key logs the shared test data's oracle files name for `path`, and the one
    beside it as this project's captures keep them: `NAME.keylog` for `NAME.pcap`,
    else `PREFIX.keylog` for `PREFIX_….pcap` (`chrome.keylog` for `chrome_h3.pcap`)."""
    d, name = os.path.split(path)
    found = set()
    stem = os.path.splitext(name)[0]
    beside = os.path.join(d, stem + ".keylog")
    if os.path.exists(beside):
        found.add(beside)
    else:
        for log in glob.glob(os.path.join(d, "*.keylog")):
            if stem.startswith(os.path.splitext(os.path.basename(log))[0] + "_"):
                found.add(log)
    for oracle in glob.glob(os.path.join(d, "expected", name + ".*tshark.json")):
        try:
            with open(oracle) as f:
                log = json.load(f).get("keylog")
        except (OSError, ValueError):
            continue
        if log and os.path.exists(os.path.join(d, log)):
            found.add(os.path.join(d, log))
    return sorted(found)


def consentry_leaves(binary, path, keylog):
    """{(client, server, sha256)} of the exchanges that carry a server certificate."""
    out = set()
    for x in consentry_exchanges(binary, path, *(["--keylog", keylog] if keylog else [])):
        cert = (x.get("tls") or {}).get("server_certificate")
        if cert:
            out.add((x.get("client"), x.get("server"), cert["sha256"]))
    return out


def tshark_leaves(binary, path, keylog):
    """{(client, server, sha256)}: the first certificate of the first Certificate
    message of each TCP stream or QUIC connection (its UDP stream), the server's (a
    client's, in mutual TLS, comes after it; the frame's destination is the
    client)."""
    cmd = [binary, "-n", "-r", path, "-Y", "tls.handshake.type == 11 && (tcp || quic)",
           "-T", "fields", "-E", "separator=|", "-E", "occurrence=a",
           "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
           "-e", "tls.handshake.certificate", "-e", "tcp.stream", "-e", "udp.stream"]
    if keylog:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = set()
    streams = set()
    for line in run.stdout.splitlines():
        f = line.split("|")
        stream = ("tcp", f[5]) if len(f) == 7 and f[5] else ("udp", f[-1])
        if len(f) != 7 or not f[4] or stream in streams:
            continue
        streams.add(stream)
        # Tunnels give several addresses; the innermost is last.
        server = (f[0] or f[1]).split(",")[-1]
        client = (f[2] or f[3]).split(",")[-1]
        first = f[4].split(",")[0]
        try:
            der = bytes.fromhex(first.replace(":", ""))
        except ValueError:
            continue
        out.add((client, server, hashlib.sha256(der).hexdigest()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("--tshark", default="tshark")
    ap.add_argument("dirs", nargs="*")
    args = ap.parse_args()
    totals = [0, 0, 0, 0]
    readings = 0
    ok = True
    for path in captures(args.dirs):
        for keylog in [None] + keylogs(path):
            readings += 1
            ours = consentry_leaves(args.consentry, path, keylog)
            theirs = tshark_leaves(args.tshark, path, keylog)
            name = path + (f" (key log {os.path.basename(keylog)})" if keylog else "")
            ok &= pair_compare.compare(name, ours, theirs, totals)
    same, differ, missing, extra = totals
    print(f"server certificates over {readings} readings, client-server pairs: {same} agree, "
          f"{differ} differ, {missing} read by tshark alone, {extra} by consentry alone")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
