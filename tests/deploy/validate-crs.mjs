// Validates the custom resources that validate_core.py handed on (JSON lines: {file, object}):
//  - cert-manager, ArgoCD, Argo Rollouts, External Secrets, prometheus-operator kinds with the
//    @kubernetes-models/* packages' own validate() (types, enums, required fields);
//  - CloudNativePG and RabbitMQ kinds against the openAPIV3Schema of the CRDs kept in
//    deploy/crds, strictly: an object schema that lists its properties rejects any other
//    (unless it says x-kubernetes-preserve-unknown-fields), as the API server's pruning would
//    silently drop them.
// A kind not listed here fails.
//   node validate-crs.mjs crs.jsonl deploy/crds
import fs from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import YAML from "yaml";

import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import { Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer";
import { ClusterIssuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/ClusterIssuer";
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import { AppProject } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject";
import { ApplicationSet } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/ApplicationSet";
import { Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout";
import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate";
import { ExternalSecret } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret";
import { ClusterSecretStore } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ClusterSecretStore";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { AlertmanagerConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/AlertmanagerConfig";

const models = new Map(
  [Certificate, Issuer, ClusterIssuer, Application, AppProject, ApplicationSet, Rollout,
    AnalysisTemplate, ExternalSecret, ClusterSecretStore, ServiceMonitor, PrometheusRule, AlertmanagerConfig]
    .map((m) => [`${m.apiVersion} ${m.kind}`, m]),
);

// Make a CRD's structural schema strict: closed objects, as kubernetes-validate --strict does.
function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== "object") return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith("x-kubernetes-")) continue; // not JSON Schema keywords
    out[k] = ["properties", "patternProperties", "definitions"].includes(k)
      ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, strict(s)]))
      : strict(v);
  }
  if (schema.properties && schema.additionalProperties === undefined
      && !schema["x-kubernetes-preserve-unknown-fields"]) {
    out.additionalProperties = false;
  }
  return out;
}

function crdValidators(dir) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  // OpenAPI's numeric formats; the rest only annotate.
  ajv.addFormat("int32", { type: "number", validate: (n) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n) => Number.isInteger(n) });
  for (const f of ["date-time", "byte", "double", "float", "uri", "duration"]) ajv.addFormat(f, true);
  const v = new Map();
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = YAML.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    if (crd?.kind !== "CustomResourceDefinition") continue;
    for (const ver of crd.spec.versions) {
      const schema = structuredClone(ver.schema.openAPIV3Schema);
      // metadata is the API server's business (ObjectMeta): keep it open here.
      schema.properties.metadata = { type: "object" };
      v.set(`${crd.spec.group}/${ver.name} ${crd.spec.names.kind}`, ajv.compile(strict(schema)));
    }
  }
  return v;
}

const [, , input, crdDir] = process.argv;
const crds = crdValidators(crdDir);
let ok = 0;
let failed = 0;
for (const line of fs.readFileSync(input, "utf8").split("\n").filter(Boolean)) {
  const { file, object } = JSON.parse(line);
  const key = `${object.apiVersion} ${object.kind}`;
  const where = `${file}: ${object.kind}/${object.metadata?.name}`;
  const Model = models.get(key);
  const crd = crds.get(key);
  if (Model) {
    try {
      new Model(object).validate();
      ok++;
    } catch (e) {
      failed++;
      console.log(`FAIL ${where}: ${e.message}`);
    }
  } else if (crd) {
    if (crd(object)) ok++;
    else {
      failed++;
      for (const e of crd.errors) {
        console.log(`FAIL ${where}: ${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
      }
    }
  } else {
    failed++;
    console.log(`FAIL ${where}: no schema for ${key}`);
  }
}
console.log(`custom resources: ${ok} valid, ${failed} failed`);
process.exit(failed ? 1 : 0);
