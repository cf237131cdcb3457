"""What the scripts comparing consentry's per-connection values with a peer tool's
share (`fingerprint_check.py`, `certificate_check.py`): the captures under some
directories, consentry's exchanges of one, and the comparison per client-server
pair."""

import json
import os
import subprocess

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


def captures(dirs):
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in sorted(files):
                if name.endswith(CAPTURE_SUFFIXES):
                    yield os.path.join(root, name)


def consentry_exchanges(binary, path, *args):
    """The exchanges `consentry exchanges --format jsonl` reads from `path` (`args`
    after the file: `--keylog …`), as dicts."""
    run = subprocess.run(
        [binary, "exchanges", "--format", "jsonl", path, *args],
        capture_output=True, text=True, timeout=600,
    )
    for line in run.stdout.splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def compare(title, ours, theirs, counts):
    """Compares two sets of tuples ending in (client, server, value), the items before
    those (a kind) telling connections apart too, per connection: both read it and
    agree on a value, both read it and share none (`≠`), or only one side read a
    value (`-` the reference, `+` consentry). Adds to `counts` ([agree, differ,
    reference alone, consentry alone]), prints the differences under `title`, and
    is true when no connection differs."""
    def by_conn(values):
        out = {}
        for *conn, value in values:
            out.setdefault(tuple(conn), set()).add(value)
        return out

    ours, theirs = by_conn(ours), by_conn(theirs)
    lines = []
    differ = 0
    for conn in sorted(set(ours) | set(theirs), key=str):
        o, r = ours.get(conn, set()), theirs.get(conn, set())
        pair = f"{conn[-2]} -> {conn[-1]}"
        if o & r:
            counts[0] += 1
        elif o and r:
            counts[1] += 1
            differ += 1
            lines.append(f"    ≠ {pair}: {sorted(o)} against {sorted(r)}")
            continue
        elif r:
            counts[2] += 1
        else:
            counts[3] += 1
        # Further values on a pair both read (a second ClientHello after a
        # HelloRetryRequest, another connection between the same hosts).
        lines += [f"    - {pair}: {v}" for v in sorted(r - o)]
        lines += [f"    + {pair}: {v}" for v in sorted(o - r)]
    if lines:
        print(f"{title}:")
        print("\n".join(lines))
    return differ == 0
