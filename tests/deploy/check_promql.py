#!/usr/bin/env python3
"""The Prometheus queries of the Argo Rollouts analyses must parse: each one, its {{args.*}}
filled in, becomes a recording rule that `promtool check rules` checks.

    check_promql.py RENDERED.yaml...        # exit 1 when a query does not parse
    check_promql.py --self-test             # a broken query must fail
"""

import re
import subprocess
import sys
import tempfile

import yaml

KINDS = {"AnalysisTemplate", "ClusterAnalysisTemplate"}


def queries(paths):
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") not in KINDS:
                    continue
                for metric in doc["spec"].get("metrics", []):
                    query = metric.get("provider", {}).get("prometheus", {}).get("query")
                    if query:
                        yield f"{doc['metadata']['name']}/{metric['name']}", query


def check(named):
    # Arguments are label values in these queries: any plain string stands in for them.
    rules = [{"record": "analysis:" + re.sub(r"[^a-zA-Z0-9_:]", "_", name),
              "expr": re.sub(r"\{\{\s*args\.[\w-]+\s*\}\}", "sample", query)} for name, query in named]
    if not rules:
        print("no analysis queries found", file=sys.stderr)
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"groups": [{"name": "analysis", "rules": rules}]}, f)
        f.flush()
        result = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    print("\n".join(part for part in (result.stdout.strip(), result.stderr.strip()) if part))
    if result.returncode == 0:
        print(f"{len(rules)} analysis queries parse: " + ", ".join(name for name, _ in named))
    return result.returncode


def main():
    if sys.argv[1:] == ["--self-test"]:
        broken = check([("broken", 'sum(rate(http_requests_total{job="{{args.service}}"}[2m])')])
        return 0 if broken != 0 else 1
    return check(list(queries(sys.argv[1:])))


if __name__ == "__main__":
    sys.exit(main())
