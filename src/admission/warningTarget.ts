import type { Pod } from "../pods/pod.js";

/** The object a pod's warnings are recorded on: what a person manages, not the pod. */
export interface WorkloadRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  /** Absent when derived from a name (a Deployment): no API read is made to learn it. */
  uid?: string;
}

interface OwnerReference {
  apiVersion?: unknown;
  kind?: unknown;
  name?: unknown;
  uid?: unknown;
  controller?: unknown;
}

/** k8s.io/api apps/v1 DefaultDeploymentUniqueLabelKey: the label a Deployment puts on its ReplicaSets' pods. */
const POD_TEMPLATE_HASH = "pod-template-hash";
/** validation.DNS1123SubdomainMaxLength: longer Deployment names are cut to fit the ReplicaSet name. */
const MAX_NAME = 253;

/**
 * The Deployment behind a ReplicaSet, from names alone. The deployment controller names the
 * ReplicaSet `<deployment>-<pod-template-hash>` and labels its pods with that hash
 * (kubernetes v1.34 pkg/controller/deployment/sync.go, getNewReplicaSet and
 * generateReplicaSetName). A name at the 253-character limit may have had the Deployment's name
 * cut short, so it gives no answer.
 */
export function deploymentOfReplicaSet(replicaSetName: string, podTemplateHash: string | undefined): string | undefined {
  if (!podTemplateHash || replicaSetName.length >= MAX_NAME) return undefined;
  const suffix = `-${podTemplateHash}`;
  if (!replicaSetName.endsWith(suffix) || replicaSetName.length === suffix.length) return undefined;
  return replicaSetName.slice(0, -suffix.length);
}

const isString = (value: unknown): value is string => typeof value === "string" && value !== "";

/**
 * Where a pod's admission warnings should land: its controller (ownerReferences with
 * controller: true), or the Deployment when that controller is a Deployment's ReplicaSet. A Job
 * stays the Job: the CronJob behind it cannot be told from the Job's name alone (any Job may be
 * called `<name>-<digits>`). A pod without a controller has no target: at CREATE it has no uid
 * yet, and its creator saw the warnings in the API response.
 */
export function warningTarget(pod: Pod, namespace: string): WorkloadRef | undefined {
  const owners = pod.metadata?.ownerReferences;
  if (!Array.isArray(owners)) return undefined;
  const owner = (owners as OwnerReference[]).find((o) => o !== null && typeof o === "object" && o.controller === true);
  if (!owner || !isString(owner.apiVersion) || !isString(owner.kind) || !isString(owner.name)) return undefined;
  if (owner.kind === "ReplicaSet" && owner.apiVersion === "apps/v1") {
    const deployment = deploymentOfReplicaSet(owner.name, pod.metadata?.labels?.[POD_TEMPLATE_HASH]);
    if (deployment) return { apiVersion: "apps/v1", kind: "Deployment", name: deployment, namespace };
  }
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, namespace, ...(isString(owner.uid) ? { uid: owner.uid } : {}) };
}
