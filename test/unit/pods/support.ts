import { readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { buildClusterState, type ClusterState } from "../../../src/admission/state.js";
import type { Pod } from "../../../src/pods/pod.js";
import type { AdmissionReview } from "../../../src/admission/review.js";
import { admissionReview } from "../../cluster/reviews.js";

export function fixturePod(name: string): Pod {
  return parse(readFileSync(`test/fixtures/pods/${name}.yaml`, "utf8")) as Pod;
}

/** State from YAML documents (policies, namespaces), as `review --state` builds it. */
export function stateFrom(yaml: string, webhookNamespace?: string): ClusterState {
  const objects = parseAllDocuments(yaml).map((d) => d.toJS() as unknown).filter(Boolean);
  const state = buildClusterState({ objects, webhookNamespace });
  if (state.problems.length > 0) throw new Error(state.problems.join("; "));
  return state;
}

export function policyYaml(name: string, spec: string, namespace = "shop"): string {
  return `apiVersion: appsnapshots.io/v1alpha1\nkind: SnapshotPolicy\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${spec
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n")}\n---\n`;
}

export function createReview(pod: Pod, namespace = pod.metadata?.namespace ?? "default", operation: "CREATE" | "UPDATE" = "CREATE"): AdmissionReview {
  return admissionReview({ group: "", kind: "Pod", resource: "pods", namespace, operation, object: pod, ...(operation === "UPDATE" ? { oldObject: pod } : {}) });
}
