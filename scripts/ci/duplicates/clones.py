#!/usr/bin/env python3
"""Compares a jscpd JSON report with the committed baseline of known clones (scripts/ci/duplicates.sh).

A clone is identified by its two files (repository-relative, in sorted order) and a fingerprint: the
SHA-256 of the duplicated text of its first side, with every run of whitespace made one space. No line
numbers: code moving up or down a file, or re-indented, keeps its fingerprint; a change inside the
duplicated text, or a copy into another file, makes a new one. The baseline is a multiset: the same
fragment duplicated twice within one pair of files is listed twice.

  clones.py check  REPORT ROOT BASELINE   exit 1 when a clone is not in the baseline (2: could not compare)
  clones.py update REPORT ROOT BASELINE   rewrite the baseline from the report
"""
import hashlib
import json
import os
import re
import sys
from collections import Counter

HEADER = """\
# Known duplicated blocks of code: scripts/ci/duplicates.sh fails on any clone not listed here.
# Rewrite with scripts/ci/duplicates.sh --update-baseline (after removing a clone, or when one is
# deliberate: the diff of this file shows it to the reviewer).
# One clone a line: fingerprint, file, file (tab-separated); what follows '#' is for people only.
"""


def rel(root, name):
    path = os.path.relpath(os.path.realpath(name), os.path.realpath(root))
    return path.replace(os.sep, "/")


def side(root, f):
    path = rel(root, f["name"])
    with open(os.path.join(root, path), "rb") as fh:
        data = fh.read()
    start, end = f["startLoc"]["position"], f["endLoc"]["position"]
    text = data[start:end].decode("utf-8", errors="replace")
    return {
        "path": path,
        "start": f["startLoc"]["line"],
        "end": f["endLoc"]["line"],
        "pos": start,
        "text": text,
        # The whole lines, to show: the clone's own boundaries are tokens, often mid-line.
        "lines": data.decode("utf-8", errors="replace").split("\n")[f["startLoc"]["line"] - 1 : f["endLoc"]["line"]],
    }


def clones(report, root):
    with open(report, encoding="utf-8") as fh:
        duplicates = json.load(fh).get("duplicates", [])
    out = []
    for d in duplicates:
        a, b = sorted((side(root, d["firstFile"]), side(root, d["secondFile"])), key=lambda s: (s["path"], s["pos"]))
        norm = re.sub(r"\s+", " ", a["text"]).strip()
        fingerprint = hashlib.sha256(norm.encode("utf-8")).hexdigest()[:16]
        first = next((line.strip() for line in a["lines"] if re.search(r"\w", line)), "")
        out.append(
            {
                "key": (fingerprint, a["path"], b["path"]),
                "a": a,
                "b": b,
                "format": d.get("format", "?"),
                "lines": d.get("lines", a["end"] - a["start"] + 1),
                "tokens": d.get("tokens", 0),
                "first": first,
            }
        )
    out.sort(key=lambda c: (c["key"][1], c["key"][2], c["a"]["pos"], c["key"][0]))
    return out


def read_baseline(path):
    known = Counter()
    notes = {}
    if not os.path.exists(path):
        return known, notes
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            body, _, note = line.partition("#")
            fields = body.split()
            if not fields:
                continue
            if len(fields) != 3:
                sys.exit(f"{path}:{n}: expected 'fingerprint file file', got {line.strip()!r}")
            key = tuple(fields)
            known[key] += 1
            notes.setdefault(key, note.strip())
    return known, notes


def short(text, width=100):
    text = text.rstrip()
    return text if len(text) <= width else text[: width - 1] + "…"


def update(found, baseline):
    with open(baseline, "w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for c in found:
            fh.write("\t".join(c["key"]) + f"\t# {c['format']}, {c['lines']} lines: {short(c['first'], 80)}\n")
    print(f"duplicates: baseline {baseline} rewritten: {len(found)} clone(s)")


def check(found, baseline):
    known, notes = read_baseline(baseline)
    left = Counter(known)
    new = []
    for c in found:
        if left[c["key"]] > 0:
            left[c["key"]] -= 1
        else:
            new.append(c)
    fixed = sorted(left.elements())
    print(f"duplicates: {len(found)} clone(s) found, {sum(known.values())} in the baseline, {len(new)} new, {len(fixed)} fixed")
    for key in fixed:
        note = f"  ({notes[key]})" if notes.get(key) else ""
        print(f"fixed — remove from baseline: {key[0]} {key[1]} {key[2]}{note}")
    if fixed:
        print("  (scripts/ci/duplicates.sh --update-baseline rewrites it)")
    for c in new:
        a, b = c["a"], c["b"]
        print(f"\nNEW duplicated block ({c['format']}, {c['lines']} lines, {c['tokens']} tokens), fingerprint {c['key'][0]}:")
        print(f"  {a['path']}:{a['start']}-{a['end']}")
        print(f"  {b['path']}:{b['start']}-{b['end']}")
        for line in a["lines"][:5]:
            print(f"    | {short(line)}")
        if len(a["lines"]) > 5:
            print(f"    | … ({len(a['lines']) - 5} more lines)")
    if new:
        print(
            f"\nduplicates: {len(new)} new duplicated block(s). Factor the code out; if a copy is deliberate,"
            " run scripts/ci/duplicates.sh --update-baseline and commit the baseline with a reason."
        )
        return 1
    return 0


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("check", "update"):
        sys.exit(__doc__)
    mode, report, root, baseline = sys.argv[1:]
    found = clones(report, root)
    if mode == "update":
        update(found, baseline)
        return 0
    return check(found, baseline)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # a broken report or baseline is an error (2), not a finding (1)
        import traceback

        traceback.print_exc()
        sys.exit(2)
