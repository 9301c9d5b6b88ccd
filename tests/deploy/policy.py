#!/usr/bin/env python3
"""Policy tests over rendered manifests (`kubectl kustomize` output), one rule per function:

  probes            every Deployment/Rollout container has startup, liveness and readiness probes
  resources         ... and CPU and memory requests and limits
  security-context  ... runAsNonRoot, a non-root uid, allowPrivilegeEscalation false,
                    capabilities drop ALL, seccomp RuntimeDefault (pod or container level)
  read-only-root    ... readOnlyRootFilesystem true
  no-service-account-token  ... automountServiceAccountToken false
  pdb               a PodDisruptionBudget selects the pods of every workload with replicas > 1
  pdb-single        no PDB with minAvailable ≥ replicas (it would block every node drain)
  hpa               an HPA (autoscaling/v2, CPU) targets every Deployment/Rollout (all stateless)
  default-deny      every namespace that holds pods has a NetworkPolicy denying ingress and egress
                    to all its pods
  no-secret-values  no Secret object with data/stringData (secrets come from ExternalSecrets)
  image-tags        every image is pinned to a tag (not `latest`, not missing) or a digest
  service-selectors every Service selector matches the pods of some workload
  metrics-port      every ticketgw container serves /metrics on a port of its own (METRICS_LISTEN,
                    declared as container port `metrics`; the main port answers 404 there), and every
                    ServiceMonitor selects Services that all have the port its endpoints name
  keycloak-realm    the realm import has the platform's roles, the `ticketgw` audience and the
                    `roles` claim (when Keycloak is deployed)

A Rollout with workloadRef is checked through the Deployment it references (whose own replica
count of 0 then needs neither PDB nor HPA). Exceptions, with reasons: policy-exceptions.yaml.

    policy.py rendered/*.yaml      # check
    policy.py --self-test          # prove every rule can fail: feeds broken manifests
"""
import copy
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ("Deployment", "Rollout", "StatefulSet", "DaemonSet")
POD_OWNERS = WORKLOADS + ("Job", "CronJob")
TICKETGW_IMAGE = "ticket-gateway/ticketgw"


def load_exceptions():
    with open(os.path.join(HERE, "policy-exceptions.yaml")) as f:
        return {(e["rule"], e["kind"], e["name"]) for e in yaml.safe_load(f) or []}


def name(o):
    return o.get("metadata", {}).get("name")


def ns(o):
    return o.get("metadata", {}).get("namespace")


def pod_template(o, by_name):
    """(pod template, replicas) of a workload; a workloadRef Rollout borrows its Deployment's."""
    spec = o.get("spec", {})
    if o["kind"] == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template"), None
    if o["kind"] == "Rollout" and "workloadRef" in spec:
        ref = spec["workloadRef"]
        dep = by_name.get((ref.get("kind"), ns(o), ref.get("name")))
        return (dep or {}).get("spec", {}).get("template"), spec.get("replicas", 1)
    return spec.get("template"), spec.get("replicas", 1) if o["kind"] != "DaemonSet" else None


def rollout_owned(objs):
    """Deployments that a Rollout takes its template from (workloadRef)."""
    return {(ns(o), o["spec"]["workloadRef"]["name"]) for o in objs
            if o["kind"] == "Rollout" and "workloadRef" in o.get("spec", {})}


def matches(selector, labels):
    if not selector:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        val, op = labels.get(e["key"]), e["operator"]
        if op == "In" and val not in e.get("values", []):
            return False
        if op == "NotIn" and val in e.get("values", []):
            return False
        if op == "Exists" and val is None:
            return False
        if op == "DoesNotExist" and val is not None:
            return False
    return True


def check(objs, exceptions=frozenset()):
    errors = []
    by_name = {(o["kind"], ns(o), name(o)): o for o in objs}
    owned = rollout_owned(objs)

    def fail(rule, o, msg):
        if (rule, o["kind"], name(o)) not in exceptions:
            errors.append(f"[{rule}] {o['kind']} {ns(o) or '-'}/{name(o)}: {msg}")

    workloads = [o for o in objs if o["kind"] in POD_OWNERS]
    for o in workloads:
        tpl, replicas = pod_template(o, by_name)
        if tpl is None:
            fail("probes", o, "no pod template (workloadRef to a missing Deployment?)")
            continue
        pspec = tpl.get("spec", {})
        psc = pspec.get("securityContext", {})
        long_running = o["kind"] in WORKLOADS
        for c in pspec.get("containers", []) + pspec.get("initContainers", []):
            is_init = c in pspec.get("initContainers", [])
            if long_running and not is_init:
                for p in ("startupProbe", "livenessProbe", "readinessProbe"):
                    if p not in c:
                        fail("probes", o, f"container {c['name']} has no {p}")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        fail("resources", o, f"container {c['name']} has no {part}.{r}")
            sc = c.get("securityContext", {})
            eff = lambda k: sc.get(k, psc.get(k))  # noqa: E731
            if eff("runAsNonRoot") is not True:
                fail("security-context", o, f"container {c['name']}: runAsNonRoot is not true")
            if not eff("runAsUser"):
                fail("security-context", o, f"container {c['name']}: no non-root runAsUser")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail("security-context", o, f"container {c['name']}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                fail("security-context", o, f"container {c['name']}: privileged")
            if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                fail("security-context", o, f"container {c['name']}: capabilities do not drop ALL")
            if sc.get("capabilities", {}).get("add"):
                fail("security-context", o, f"container {c['name']}: adds capabilities")
            if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
                fail("security-context", o, f"container {c['name']}: seccompProfile is not RuntimeDefault")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail("read-only-root", o, f"container {c['name']}: readOnlyRootFilesystem is not true")
        if pspec.get("automountServiceAccountToken") is not False:
            fail("no-service-account-token", o, "automountServiceAccountToken is not false")
        if o["kind"] not in ("Deployment", "Rollout"):
            continue
        if o["kind"] == "Deployment" and (ns(o), name(o)) in owned:
            continue  # its Rollout is checked for PDB and HPA
        labels = tpl.get("metadata", {}).get("labels", {})
        pdbs = [p for p in objs if p["kind"] == "PodDisruptionBudget" and ns(p) == ns(o)
                and matches(p["spec"].get("selector"), labels)]
        if (replicas or 0) > 1 and not pdbs:
            fail("pdb", o, f"{replicas} replicas and no PodDisruptionBudget")
        for p in pdbs:
            m = p["spec"].get("minAvailable")
            if isinstance(m, int) and m >= (replicas or 0):
                fail("pdb-single", o, f"PDB {name(p)} wants {m} available of {replicas} replicas: no drain possible")
        hpas = [h for h in objs if h["kind"] == "HorizontalPodAutoscaler" and ns(h) == ns(o)
                and h["spec"]["scaleTargetRef"].get("kind") == o["kind"]
                and h["spec"]["scaleTargetRef"].get("name") == name(o)]
        if not hpas:
            fail("hpa", o, "no HorizontalPodAutoscaler targets it")
        for h in hpas:
            if h["apiVersion"] != "autoscaling/v2" or not any(
                    m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", [])):
                fail("hpa", o, f"HPA {name(h)} is not autoscaling/v2 on CPU")
            if (replicas or 0) > h["spec"].get("maxReplicas", 0) or h["spec"].get("minReplicas", 1) > h["spec"]["maxReplicas"]:
                fail("hpa", o, f"HPA {name(h)} bounds do not hold {replicas} replicas")

    # Namespaces that hold pods, or that are created here, deny by default.
    spaces = {ns(o) for o in workloads} | {name(o) for o in objs if o["kind"] == "Namespace"}
    for space in sorted(s for s in spaces if s):
        deny = [p for p in objs if p["kind"] == "NetworkPolicy" and ns(p) == space
                and p["spec"].get("podSelector") == {}
                and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
                and not p["spec"].get("ingress") and not p["spec"].get("egress")]
        if not deny:
            errors.append(f"[default-deny] namespace {space}: no NetworkPolicy denying all ingress and egress")

    for o in objs:
        if o["kind"] == "Secret" and (o.get("data") or o.get("stringData")):
            fail("no-secret-values", o, "a Secret with values is committed (use an ExternalSecret)")

    def images(o):
        tpl, _ = pod_template(o, by_name) if o["kind"] in POD_OWNERS else (None, None)
        for c in (tpl or {}).get("spec", {}).get("containers", []) + (tpl or {}).get("spec", {}).get("initContainers", []):
            yield c.get("image", "")
        if o["kind"] == "Cluster" and o["apiVersion"].startswith("postgresql.cnpg.io"):
            yield o["spec"].get("imageName", "")
        if o["kind"] == "RabbitmqCluster":
            yield o["spec"].get("image", "")

    for o in objs:
        for img in images(o):
            if "@sha256:" in img:
                continue
            last = img.rsplit("/", 1)[-1]
            tag = last.split(":", 1)[1] if ":" in last else ""
            if not tag or tag == "latest":
                fail("image-tags", o, f"image {img!r} is not pinned to a tag")

    pod_labels = []
    for o in workloads:
        tpl, _ = pod_template(o, by_name)
        if tpl:
            pod_labels.append((ns(o), tpl.get("metadata", {}).get("labels", {})))
    # Pods the operators make: CloudNativePG instances, RabbitMQ nodes.
    for o in objs:
        if o["kind"] == "Cluster" and o["apiVersion"].startswith("postgresql.cnpg.io"):
            pod_labels.append((ns(o), {"cnpg.io/cluster": name(o)}))
        if o["kind"] == "RabbitmqCluster":
            pod_labels.append((ns(o), {"app.kubernetes.io/name": name(o)}))
    for o in objs:
        if o["kind"] != "Service" or not o["spec"].get("selector"):
            continue
        sel = {"matchLabels": o["spec"]["selector"]}
        if not any(space == ns(o) and matches(sel, lbl) for space, lbl in pod_labels):
            fail("service-selectors", o, f"selector {o['spec']['selector']} matches no pod template")

    # /metrics is not served on the main port to other machines: each ticketgw container has a metrics
    # listener, and the ServiceMonitors scrape a port their Services have (a port name a Service lacks
    # scrapes nothing, silently).
    for o in workloads:
        tpl, _ = pod_template(o, by_name)
        for c in (tpl or {}).get("spec", {}).get("containers", []):
            if not c.get("image", "").split("@")[0].rsplit(":", 1)[0].endswith(TICKETGW_IMAGE):
                continue
            listen = next((e.get("value") for e in c.get("env") or [] if e.get("name") == "METRICS_LISTEN"), None)
            port = next((p.get("containerPort") for p in c.get("ports") or [] if p.get("name") == "metrics"), None)
            if not listen:
                fail("metrics-port", o, f"container {c['name']} sets no METRICS_LISTEN (Prometheus would get 404)")
            elif port is None or not listen.endswith(f":{port}"):
                fail("metrics-port", o, f"container {c['name']}: METRICS_LISTEN {listen} is not its container port `metrics` ({port})")
    for o in objs:
        if o["kind"] != "ServiceMonitor":
            continue
        sel = o["spec"].get("selector")
        services = [s for s in objs if s["kind"] == "Service" and ns(s) == ns(o)
                    and matches(sel, s.get("metadata", {}).get("labels", {}))]
        if not services:
            fail("metrics-port", o, f"selector {sel} matches no Service")
        for e in o["spec"].get("endpoints", []):
            for s in services:
                if e.get("port") not in {p.get("name") for p in s["spec"].get("ports", [])}:
                    fail("metrics-port", o, f"Service {name(s)} has no port named {e.get('port')!r}")

    for o in objs:
        if o["kind"] == "ConfigMap" and name(o) == "keycloak-realm":
            for key, text in o.get("data", {}).items():
                errors.extend(f"[keycloak-realm] ConfigMap {ns(o)}/{name(o)} {key}: {m}" for m in realm_problems(json.loads(text)))
    return errors


def realm_problems(realm):
    out = []
    if realm.get("realm") != "ticketgw":
        out.append("realm is not `ticketgw`")
    roles = {r["name"] for r in realm.get("roles", {}).get("realm", [])}
    for r in ("attendee", "organizer", "admin"):
        if r not in roles:
            out.append(f"realm role {r} missing")
    client = next((c for c in realm.get("clients", []) if c.get("clientId") == "ticketgw"), None)
    if not client:
        return out + ["client `ticketgw` missing"]
    mappers = client.get("protocolMappers", [])
    if not any(m["protocolMapper"] == "oidc-audience-mapper"
               and m["config"].get("included.client.audience") == "ticketgw"
               and m["config"].get("access.token.claim") == "true" for m in mappers):
        out.append("no audience mapper putting `ticketgw` in access tokens")
    if not any(m["protocolMapper"] == "oidc-usermodel-realm-role-mapper"
               and m["config"].get("claim.name") == "roles"
               and m["config"].get("access.token.claim") == "true" for m in mappers):
        out.append("no mapper putting the realm roles in a `roles` claim")
    return out


def load(paths):
    objs = []
    for p in paths:
        with open(p) as f:
            objs.extend(d for d in yaml.safe_load_all(f) if d)
    return objs


# ---- self-test: each rule must catch a manifest broken for it ----

def _good():
    pod = {"metadata": {"labels": {"app": "x"}},
           "spec": {"automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "ghcr.io/x/y:1.0",
                                    "startupProbe": {}, "livenessProbe": {}, "readinessProbe": {},
                                    "resources": {"requests": {"cpu": "1", "memory": "1Mi"},
                                                  "limits": {"cpu": "1", "memory": "1Mi"}},
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "readOnlyRootFilesystem": True,
                                                        "capabilities": {"drop": ["ALL"]}}}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "t"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}, "template": pod}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x", "namespace": "t"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x", "namespace": "t"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                  "minReplicas": 2, "maxReplicas": 4,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "t"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "t"},
         "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}},
    ]


def _c(objs):
    return objs[1]["spec"]["template"]["spec"]["containers"][0]


BREAKS = {
    "probes": lambda o: _c(o).pop("readinessProbe"),
    "resources": lambda o: _c(o)["resources"].pop("limits"),
    "security-context": lambda o: _c(o)["securityContext"]["capabilities"].update(drop=[]),
    "read-only-root": lambda o: _c(o)["securityContext"].update(readOnlyRootFilesystem=False),
    "no-service-account-token": lambda o: o[1]["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
    "pdb": lambda o: o.pop(2),
    "pdb-single": lambda o: o[2]["spec"].update(minAvailable=2),
    "hpa": lambda o: o.pop(3),
    "default-deny": lambda o: o.pop(4),
    "no-secret-values": lambda o: o.append({"apiVersion": "v1", "kind": "Secret",
                                            "metadata": {"name": "s", "namespace": "t"}, "stringData": {"k": "v"}}),
    "image-tags": lambda o: _c(o).update(image="ghcr.io/x/y:latest"),
    "service-selectors": lambda o: o[5]["spec"].update(selector={"app": "typo"}),
    # A ServiceMonitor scraping port `metrics` of a Service that has only an unnamed port.
    "metrics-port": lambda o: (o[5]["metadata"].update(labels={"app": "x"}), o.append(
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x", "namespace": "t"},
         "spec": {"selector": {"matchLabels": {"app": "x"}}, "endpoints": [{"port": "metrics", "path": "/metrics"}]}})),
    "keycloak-realm": lambda o: o.append({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "keycloak-realm", "namespace": "t"},
                                          "data": {"r.json": json.dumps({"realm": "ticketgw", "roles": {"realm": [{"name": "admin"}]},
                                                                         "clients": [{"clientId": "ticketgw", "protocolMappers": []}]})}}),
}


def self_test():
    passed = failed = 0
    base = check(_good())
    if base:
        print("self-test: the good manifest fails:", *base, sep="\n  ")
        failed += 1
    else:
        passed += 1
    for rule, breaker in BREAKS.items():
        objs = copy.deepcopy(_good())
        breaker(objs)
        errs = check(objs)
        if any(e.startswith(f"[{rule}]") for e in errs):
            passed += 1
        else:
            failed += 1
            print(f"self-test: breaking {rule} went unnoticed (got {errs})")
    # A ticketgw container without its metrics listener, too.
    objs = copy.deepcopy(_good())
    _c(objs).update(image="ghcr.io/ticket-gateway/ticketgw:1.0")
    if any(e.startswith("[metrics-port]") for e in check(objs)):
        passed += 1
    else:
        failed += 1
        print("self-test: a ticketgw container without METRICS_LISTEN went unnoticed")
    # Missing image tag, too.
    objs = copy.deepcopy(_good())
    _c(objs).update(image="ghcr.io/x/y")
    if any(e.startswith("[image-tags]") for e in check(objs)):
        passed += 1
    else:
        failed += 1
        print("self-test: an untagged image went unnoticed")
    print(f"policy self-test: {passed} passed, {failed} failed")
    return failed == 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    objs = load(argv[1:])
    errors = check(objs, load_exceptions())
    for e in errors:
        print("FAIL", e)
    print(f"policy: {len(objs)} objects in {len(argv) - 1} files, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
