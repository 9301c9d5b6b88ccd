#!/usr/bin/env python3
"""Validate rendered manifests: core Kubernetes kinds strictly against the Kubernetes OpenAPI
schemas (kubernetes-validate, offline, unknown fields rejected); every other kind must be one of
the custom resources that validate-crs.mjs knows, and is handed to it (as JSON lines). A kind
neither knows fails.

    validate_core.py --k8s 1.30.0 --crs-out crs.jsonl rendered/*.yaml
"""
import argparse
import copy
import json
import sys

import kubernetes_validate
import yaml

# Custom resources validated by validate-crs.mjs (apiVersion, kind): keep in step with it.
CUSTOM = {
    ("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("argoproj.io/v1alpha1", "Application"), ("argoproj.io/v1alpha1", "AppProject"),
    ("argoproj.io/v1alpha1", "ApplicationSet"),
    ("argoproj.io/v1alpha1", "Rollout"), ("argoproj.io/v1alpha1", "AnalysisTemplate"),
    ("external-secrets.io/v1", "ExternalSecret"), ("external-secrets.io/v1", "ClusterSecretStore"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
    ("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}


def core_checks(doc):
    """The core objects inside a custom resource: a Rollout's own pod template (when it has one)."""
    if doc.get("kind") == "Rollout" and "template" in doc.get("spec", {}):
        yield "spec.template", {"apiVersion": "v1", "kind": "PodTemplate",
                                "metadata": {"name": doc["metadata"]["name"]},
                                "template": copy.deepcopy(doc["spec"]["template"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s", default="1.30.0")
    ap.add_argument("--crs-out", required=True)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    failures, core, crs = 0, 0, []
    for path in a.files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            where = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key in CUSTOM:
                crs.append({"file": path, "object": doc})
                for sub, obj in core_checks(doc):
                    try:
                        kubernetes_validate.validate(obj, a.k8s, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        failures += 1
                        print(f"FAIL {where} {sub}: {e.message} at {'.'.join(map(str, e.path))}")
                continue
            try:
                kubernetes_validate.validate(doc, a.k8s, strict=True)
                core += 1
            except kubernetes_validate.SchemaNotFoundError:
                failures += 1
                print(f"FAIL {where}: {key[0]} {key[1]} is neither a Kubernetes {a.k8s} kind nor a known custom resource")
            except kubernetes_validate.ValidationError as e:
                failures += 1
                print(f"FAIL {where}: {e.message} at {'.'.join(map(str, e.path))}")
    with open(a.crs_out, "w") as f:
        for c in crs:
            f.write(json.dumps(c) + "\n")
    print(f"core objects: {core} valid against Kubernetes {a.k8s} (strict), {failures} failed; "
          f"{len(crs)} custom resources handed on")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
