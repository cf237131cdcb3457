#!/usr/bin/env python3
"""Compares consentry's findings on app HARs with TrackHAR's labels of the same files.

TrackHAR (tweasel's tracking-data adapters, npm `trackhar`) reads a HAR request by
request and labels what each known tracker endpoint transmits: property
(`advertisingId`, `deviceId`, `userId`, `model`, …), where (`body`, `query`,
`header`, with a path such as `advertising_ids.aaid` or `extinfo.5`) and value. It
knows each endpoint's format; consentry knows the values of a case and finds them in
any request, however they are encoded. This script asks whether consentry, given the
identifying values TrackHAR found as a case, finds each transmission of them that
TrackHAR labels, at the same place, and what it finds that TrackHAR does not.

For every `NAME.trackhar-expected.json` under the given directories (TrackHAR's
output: `{"requests": [{"entry_index", "url", "transmissions": [{"property",
"context", "path", "value"}, …] | null}, …]}`) with its `NAME.har` beside it:
  1. writes a case with one device holding the values of the identifying properties
     (IDENTIFYING below) as its identifiers: `advertisingId` as `advertising_id`,
     the others as `custom.<property>_<n>`;
  2. runs `consentry analyze --case … --device phone --format jsonl` (no consent
     decision: every transmission to a third party is a finding, with its data
     items) and `consentry exchanges … --format jsonl` (each exchange's HAR entry);
  3. compares, per HAR entry, the (value, place) pairs of both: TrackHAR's path
     `a.b.0.c` in the body, query or a header is consentry's `body:$.a.b[0].c`,
     `form:a`, `query:a` or `header:a` once both are written as `a.b.0.c`.
Prints per file: labels of identifying values, found at the same place, found in
the same request elsewhere, missed; consentry's finds that TrackHAR does not label;
then the non-identifying properties TrackHAR labels (device and app facts such as
`model` or `carrier`, which a case does not list) with how often.

Usage: benches/trackhar_check.py [--consentry BIN] [DIR …]
       (default DIR: ../shared/testdata/pii/tweasel-reporthar; BIN: target/release/consentry)
Exit status 0 when every label of an identifying value is found in its request.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

# TrackHAR properties that identify a device, a user or a session: the values a
# tester would list in a case once seen (the rest describe the device or the app).
IDENTIFYING = {
    "advertisingId", "hashedAdvertisingId", "idfa", "idfv", "deviceId", "userId",
    "sessionId", "installationId", "macAddress", "imei", "phoneNumber",
    "emailAddress", "name", "publicIp", "localIp",
}


def canonical(place):
    """`body:$.a.b[0].c`, `form:a`, `query:a`, `header:A`, `a.b.0.c` → `a.b.0.c`."""
    place = re.sub(r"^(body|form|query|header|payload):", "", place)
    place = place.removeprefix("$").removeprefix(".")
    place = re.sub(r"\[(\d+)\]", r".\1", place)
    place = re.sub(r"\['([^']*)'\]", r".\1", place)
    return place.strip(".").lower()


def matches(label_place, place):
    """Whether consentry's canonical `place` is TrackHAR's canonical `label_place`,
    whose `*` segments stand for any array index or key."""
    pattern = r"\.".join("[^.]+" if seg == "*" else re.escape(seg)
                         for seg in label_place.split("."))
    return re.fullmatch(pattern, place) is not None


def case_for(labels):
    """A case file whose one device holds every identifying value of `labels`."""
    values = collections.defaultdict(list)
    for t in labels:
        if t["property"] in IDENTIFYING and str(t["value"]) not in values[t["property"]]:
            values[t["property"]].append(str(t["value"]))
    kinds = {}
    lines, custom = [], []
    ads = values.pop("advertisingId", [])
    if len(ads) == 1:
        lines.append(f"advertising_id = {json.dumps(ads[0])}")
        kinds["advertising_id"] = ads[0]
    else:
        values["advertisingId"] = ads
    for prop, vals in sorted(values.items()):
        for n, v in enumerate(vals, 1):
            name = f"{re.sub(r'[^a-z0-9]', '_', prop.lower())}_{n}"
            custom.append(f"{name} = {json.dumps(v)}")
            kinds[f"custom.{name}"] = v
    if custom:
        lines.append("custom = { " + ", ".join(custom) + " }")
    text = "\n".join([
        "[case]", 'id = "trackhar-check"', 'title = "TrackHAR comparison"',
        "[app]", 'name = "app under test"', 'package = "app.under.test"',
        "[[device]]", 'id = "phone"', "[device.identifiers]", *lines, "",
    ])
    return text, kinds


def run_jsonl(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {out.returncode}: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def compare(binary, expected_path):
    har = expected_path.replace(".trackhar-expected.json", ".har")
    with open(expected_path) as f:
        expected = json.load(f)
    labels = []
    for request in expected["requests"]:
        for t in request.get("transmissions") or []:
            labels.append(dict(t, entry=request["entry_index"]))
    case_text, kinds = case_for(labels)
    with tempfile.TemporaryDirectory() as tmp:
        case = os.path.join(tmp, "case.toml")
        with open(case, "w") as f:
            f.write(case_text)
        findings = run_jsonl([binary, "analyze", "--case", case, "--device", "phone",
                              har, "--format", "jsonl"])
        exchanges = run_jsonl([binary, "exchanges", har, "--format", "jsonl"])
    entry_of = {}
    for x in exchanges:
        locator = x.get("evidence", {}).get("locator", "")
        if locator.startswith("entry "):
            entry_of[x["id"]] = int(locator.split()[1])
    found = collections.defaultdict(set)  # entry → {(value, place)}
    for f in findings:
        entry = entry_of.get(f.get("exchange"))
        for d in f.get("data", []):
            if d["type"] in kinds and entry is not None:
                found[entry].add((kinds[d["type"]], canonical(d["where"])))
    same, elsewhere, missed = [], [], []
    wanted = collections.defaultdict(set)  # entry → {(value, TrackHAR's place)}
    for t in labels:
        if t["property"] not in IDENTIFYING:
            continue
        value, place = str(t["value"]), canonical(t["path"])
        wanted[t["entry"]].add((value, place))
        here = found[t["entry"]]
        if any(v == value and matches(place, p) for v, p in here):
            same.append(t)
        elif any(v == value for v, _ in here):
            elsewhere.append(t)
        else:
            missed.append(t)
    extra = sorted((e, v, p) for e, pairs in found.items() for v, p in pairs
                   if not any(v == wv and matches(wp, p) for wv, wp in wanted[e]))
    other = collections.Counter(t["property"] for t in labels if t["property"] not in IDENTIFYING)
    return same, elsewhere, missed, extra, other


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("dirs", nargs="*",
                    default=["../shared/testdata/pii/tweasel-reporthar"])
    args = ap.parse_args()
    files = sorted(os.path.join(root, name)
                   for d in args.dirs for root, _, names in os.walk(d)
                   for name in names if name.endswith(".trackhar-expected.json"))
    if not files:
        raise SystemExit("no *.trackhar-expected.json found")
    all_found = True
    totals = collections.Counter()
    for path in files:
        same, elsewhere, missed, extra, other = compare(args.consentry, path)
        n = len(same) + len(elsewhere) + len(missed)
        totals.update(labels=n, same=len(same), elsewhere=len(elsewhere),
                      missed=len(missed), extra=len(extra))
        print(f"{path}: {n} labels of identifying values; {len(same)} found at the same "
              f"place, {len(elsewhere)} in the same request elsewhere, {len(missed)} missed; "
              f"{len(extra)} more found")
        for t in elsewhere + missed:
            kind = "elsewhere" if t in elsewhere else "missed"
            print(f"    {kind}: entry {t['entry']} {t['property']} {t['context']}:{t['path']}")
        for e, v, p in extra:
            print(f"    more: entry {e} {v} at {p}")
        print("    not identifying (no case value): " +
              ", ".join(f"{k} {c}" for k, c in sorted(other.items())))
        all_found &= not missed
    print(f"{totals['labels']} labels: {totals['same']} same place, {totals['elsewhere']} "
          f"elsewhere in the request, {totals['missed']} missed; {totals['extra']} more found")
    sys.exit(0 if all_found else 1)


if __name__ == "__main__":
    main()
