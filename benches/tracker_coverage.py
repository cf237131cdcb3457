#!/usr/bin/env python3
"""How consentry classifies the hosts a real app contacted, against the labels of
TrackerControl and the domains of an iOS App Privacy Report.

TrackerControl (Android, a local VPN) labels each connection of an app with the
company of the tracker it reaches (from its own lists: Disconnect, DuckDuckGo and
Exodus-derived); an iOS App Privacy Report lists the domains each app contacted.
This script asks consentry who receives traffic to each of those hosts: it writes a
HAR with one request per host carrying a case identifier, runs `consentry analyze`
with `rules.flag_infrastructure = true`, `rules.flag_platform = true` and no consent
decision (so every host but a first party gives a finding whose `destination` holds
consentry's classification: party, entity, categories), and prints per host
consentry's entity and categories beside TrackerControl's company and category.

Inputs (any number): TrackerControl CSV exports (`uid,daddr,time,uncertain,Tracker,
Category,Package,App`) and App Privacy Report NDJSON files (`type: networkActivity`
records with a `domain`), found by name (`*tracker-control*.csv`,
`*app-privacy-report*.ndjson`) under the given directories.

Usage: benches/tracker_coverage.py [--consentry BIN] [DIR …]
       (default DIR: ../shared/testdata/pii/tweasel-reporthar)
Prints a markdown table and a summary line: hosts TrackerControl names a tracker
company for, and how many of them consentry assigns to an entity of its database.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

AAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


def read_inputs(dirs):
    labels = {}  # host → (company, category, uncertain) from TrackerControl
    hosts = set()
    for d in dirs:
        for root, _, names in os.walk(d):
            for name in sorted(names):
                path = os.path.join(root, name)
                if "tracker-control" in name and name.endswith(".csv"):
                    with open(path, newline="") as f:
                        for row in csv.DictReader(f):
                            host = row["daddr"].strip().lower()
                            hosts.add(host)
                            if row.get("Tracker"):
                                labels[host] = (row["Tracker"], row.get("Category", ""),
                                                row.get("uncertain") == "1")
                elif "app-privacy-report" in name and name.endswith(".ndjson"):
                    with open(path) as f:
                        for line in f:
                            try:
                                record = json.loads(line)
                            except json.JSONDecodeError:
                                continue
                            domain = record.get("domain")
                            if record.get("type") == "networkActivity" and domain:
                                hosts.add(domain.strip().lower())
    # Addresses are not hosts a database names.
    return sorted(h for h in hosts if h and not h.replace(".", "").isdigit() and ":" not in h), labels


def har_of(hosts):
    entries = []
    for i, host in enumerate(hosts):
        entries.append({
            "startedDateTime": f"2026-12-04T09:00:{i % 60:02d}.{i // 60:03d}Z",
            "time": 1,
            "request": {"method": "GET", "url": f"https://{host}/c?aid={AAID}",
                        "httpVersion": "HTTP/1.1", "headers": [{"name": "Host", "value": host}],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 204, "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [], "cookies": [], "content": {"size": 0, "mimeType": ""},
                         "redirectURL": "", "headersSize": -1, "bodySize": 0},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        })
    return {"log": {"version": "1.2", "creator": {"name": "tracker_coverage.py", "version": "1"},
                    "entries": entries}}


CASE = f"""[case]
id = "tracker-coverage"
title = "Who receives each host"
[app]
name = "app under test"
package = "app.under.test"
[[device]]
id = "phone"
[device.identifiers]
advertising_id = "{AAID}"
[rules]
flag_infrastructure = true
flag_platform = true
"""


def classify(binary, hosts):
    with tempfile.TemporaryDirectory() as tmp:
        har, case = os.path.join(tmp, "hosts.har"), os.path.join(tmp, "case.toml")
        with open(har, "w") as f:
            json.dump(har_of(hosts), f)
        with open(case, "w") as f:
            f.write(CASE)
        out = subprocess.run([binary, "analyze", "--case", case, "--device", "phone", har,
                              "--format", "jsonl"], capture_output=True, text=True, timeout=600)
    if out.returncode not in (0, 1):
        raise SystemExit(f"consentry analyze: exit {out.returncode}: {out.stderr.strip()}")
    seen = {}
    for line in out.stdout.splitlines():
        f = json.loads(line)
        d = f.get("destination", {})
        seen.setdefault(d.get("host", ""), (d.get("party", ""), d.get("entity") or "",
                                            ",".join(d.get("categories") or []),
                                            d.get("hosted_by") or ""))
    return seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("dirs", nargs="*", default=["../shared/testdata/pii/tweasel-reporthar"])
    args = ap.parse_args()
    hosts, labels = read_inputs(args.dirs)
    if not hosts:
        raise SystemExit("no TrackerControl CSV or App Privacy Report found")
    seen = classify(args.consentry, hosts)
    print("| host | consentry: party / entity / categories (hosting platform) "
          "| TrackerControl: company / category |")
    print("|---|---|---|")
    named = known = 0
    for host in hosts:
        party, entity, cats, platform = seen.get(host, ("(no finding)", "", "", ""))
        company, category, uncertain = labels.get(host, ("", "", False))
        if company:
            named += 1
            known += bool(entity)
        ours = " / ".join(x for x in (party, entity, cats) if x)
        if platform:
            ours += f" (on {platform})"
        theirs = f"{company} / {category}{' (uncertain)' if uncertain else ''}" if company else "-"
        print(f"| {host} | {ours} | {theirs} |")
    print(f"\n{len(hosts)} hosts; TrackerControl names a company for {named}, "
          f"consentry assigns {known} of those to an entity of its database")
    sys.exit(0)


if __name__ == "__main__":
    main()
