#!/usr/bin/env python3
"""Every distinct failure in schemathesis JUnit reports, once: operation, the check, the status
answered and what was wrong, with the runs (report file names: anonymous, attendee, admin) that met it.

    dast-summary.py REPORT.xml...

Prints nothing when there is no failure; exit 0 either way (schemathesis's own exit is the gate)."""
import collections
import os
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")
reports = [(p, ET.parse(p).getroot()) for p in sys.argv[1:] if os.path.exists(p)]
# The operations' path templates, to name the operation behind a concrete URL.
templates = []
for _, root in reports:
    for case in root.iter("testcase"):
        parts = case.get("name", "").split(" ", 1)
        if len(parts) == 2 and parts[0] in METHODS and parts[1] not in templates:
            templates.append(parts[1])
templates.sort(key=lambda t: t.count("{"))  # literal segments win: /me/organizer before /me/{id}


def template_of(path):
    for t in templates:
        if re.fullmatch(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(t)), path):
            return t
    return path


found = collections.OrderedDict()
for path, root in reports:
    run = os.path.splitext(os.path.basename(path))[0]
    for case in root.iter("testcase"):
        operation = case.get("name", "?")
        for failure in list(case.iter("failure")) + list(case.iter("error")):
            text = failure.text or failure.get("message") or ""
            # Name the request that failed, the last one the reproduction sends: coverage tests send
            # other methods to an operation's path, stateful tests ("Stateful tests") chain calls.
            sent = re.findall(r"^\s*curl -X (\w+) .*?'?(https?://[^\s']+)'?\s*$", text, re.M)
            op = operation
            if sent:
                method, url = sent[-1]
                op = f"{method} {template_of(urllib.parse.urlsplit(url).path)}"
            status = re.search(r"^\[(\d{3})\]", text, re.M)
            status = status.group(1) if status else "-"
            blocks = re.findall(r"^- (ST\d+ [^\n]+)\n(.*?)(?=^- ST\d|^\[\d{3}\]|^Reproduce with|\Z)", text, re.M | re.S)
            if not blocks:
                blocks = [(failure.get("message", "error"), text.split("\n", 1)[-1][:300])]
            for check, detail in blocks:
                lines = [" ".join(line.split()) for line in detail.strip().splitlines() if line.strip()]
                detail = "; ".join(lines)
                if len(detail) > 300:
                    detail = detail[:297] + "..."
                key = (op, status, check.strip(), detail)
                found.setdefault(key, [])
                if run not in found[key]:
                    found[key].append(run)

if found:
    print(f"dast: {len(found)} distinct failures (operation, status, check, detail, runs):")
    for (op, status, check, detail), runs in sorted(found.items()):
        print(f"  {op} [{status}] {check}" + (f": {detail}" if detail else "") + f"  ({', '.join(runs)})")
