import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { admit } from "../../../src/admission/admit.js";
import { applyPatch, type Operation } from "../../../src/admission/patch.js";
import type { AdmissionReview, AdmissionReviewResponse } from "../../../src/admission/review.js";
import { buildClusterState, type ClusterState } from "../../../src/admission/state.js";
import { podOf } from "../../../src/commands/explainReport.js";
import type { Container, Pod } from "../../../src/pods/pod.js";
import { admissionReview } from "../../cluster/reviews.js";

/** The corpus: real-world inputs written as their producers write them (see test/fixtures/corpus/README.md). */
export const CORPUS = "test/fixtures/corpus";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Every document of a corpus file, in file order (the order matters: it is the apply order). */
export function load(file: string): KubeObject[] {
  const text = readFileSync(`${CORPUS}/${file}`, "utf8");
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((o): o is KubeObject => typeof o === "object" && o !== null);
}

/** "velero/docs-aws.yaml BackupStorageLocation velero/minio": how a failure names its input. */
export function describeObject(file: string, object: KubeObject): string {
  const meta = object.metadata ?? {};
  return `${file} ${object.kind ?? "?"} ${meta.namespace ?? "-"}/${meta.name ?? (meta.generateName as string | undefined) ?? "?"}`;
}

export function state(objects: readonly unknown[], snapshotLocationsKnown = false): ClusterState {
  return buildClusterState({ objects, snapshotLocationsKnown });
}

/** Who sends a request: Velero's server (`velero install`'s service account) or a person. */
export const VELERO_USER = {
  username: "system:serviceaccount:velero:velero",
  uid: "4f1e2d3c-5b6a-4789-9abc-def012345678",
  groups: ["system:serviceaccounts", "system:serviceaccounts:velero", "system:authenticated"],
};
/** Velero's server installed by its Helm chart: the ServiceAccount is "<release>-server". */
export const VELERO_CHART_USER = {
  username: "system:serviceaccount:velero:velero-server",
  uid: "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d",
  groups: ["system:serviceaccounts", "system:serviceaccounts:velero", "system:authenticated"],
};
export const ADMIN_USER = { username: "kubernetes-admin", groups: ["kubeadm:cluster-admins", "system:authenticated"] };
export type User = typeof VELERO_USER | typeof ADMIN_USER | undefined;

const RESOURCES: Record<string, string> = {
  BackupStorageLocation: "backupstoragelocations",
  Backup: "backups",
  Schedule: "schedules",
  Restore: "restores",
  VolumeSnapshotLocation: "volumesnapshotlocations",
  Pod: "pods",
};

/** The AdmissionReview the apiserver sends for this object (group and resource from its kind). */
export function reviewOf(object: KubeObject, operation: "CREATE" | "UPDATE", user: User, oldObject?: KubeObject): AdmissionReview {
  const kind = object.kind ?? "";
  const group = (object.apiVersion ?? "").includes("/") ? object.apiVersion!.split("/")[0]! : "";
  const review = admissionReview({
    group,
    kind,
    resource: RESOURCES[kind] ?? `${kind.toLowerCase()}s`,
    namespace: object.metadata?.namespace ?? "default",
    operation,
    object,
    ...(object.metadata?.name ? { name: object.metadata.name } : {}),
    ...(oldObject ? { oldObject } : {}),
  });
  return user ? { ...review, request: { ...review.request, userInfo: user } } : review;
}

export function admitObject(object: KubeObject, current: ClusterState, user: User, operation: "CREATE" | "UPDATE" = "CREATE", oldObject?: KubeObject): AdmissionReviewResponse {
  return admit(reviewOf(object, operation, user, oldObject), current);
}

/** The pod the apiserver stores after this response (its JSON Patch applied). */
export function patchedPod(pod: Pod, response: AdmissionReviewResponse): Pod {
  const patch = response.response.patch;
  if (!patch) return pod;
  return applyPatch(pod, JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as Operation[]);
}

export function patchOperations(response: AdmissionReviewResponse): Operation[] {
  const patch = response.response.patch;
  return patch ? (JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as Operation[]) : [];
}

/**
 * The pod as the apiserver hands it to the webhook when a controller creates it from this workload:
 * the template (explain's podOf, which also adds the StatefulSet's claim volumes), the controller's
 * labels and ownerReference, the pod defaults, and the ServiceAccount admission plugin's token volume
 * (built-in admission runs before webhooks). A Pod manifest is taken as it is.
 */
export function controllerPod(manifest: KubeObject): Pod {
  const pod = podOf(structuredClone(manifest));
  if (!pod) throw new Error(`${manifest.kind} ${manifest.metadata?.name} has no pod template`);
  if (manifest.kind === "Pod") return structuredClone(pod);
  const name = manifest.metadata?.name ?? "workload";
  const namespace = manifest.metadata?.namespace ?? "default";
  const labels = { ...(pod.metadata?.labels ?? {}) };
  let owner: { apiVersion: string; kind: string; name: string };
  const metadata: NonNullable<Pod["metadata"]> = { ...(pod.metadata ?? {}), namespace };
  delete metadata.name;
  switch (manifest.kind) {
    case "StatefulSet":
      metadata.name = `${name}-0`;
      Object.assign(labels, { "controller-revision-hash": `${name}-5c8b7f9d6d`, "statefulset.kubernetes.io/pod-name": `${name}-0`, "apps.kubernetes.io/pod-index": "0" });
      owner = { apiVersion: "apps/v1", kind: "StatefulSet", name };
      break;
    case "Deployment":
      metadata.generateName = `${name}-5d8f7c6b9d-`;
      labels["pod-template-hash"] = "5d8f7c6b9d";
      owner = { apiVersion: "apps/v1", kind: "ReplicaSet", name: `${name}-5d8f7c6b9d` };
      break;
    case "CronJob":
    case "Job": {
      const job = manifest.kind === "CronJob" ? `${name}-29413440` : name;
      const uid = "8c2f5e1a-7b3d-4c9e-a1f0-6d4b2c8e9f07";
      metadata.generateName = `${job}-`;
      Object.assign(labels, { "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": job, "controller-uid": uid, "job-name": job });
      owner = { apiVersion: "batch/v1", kind: "Job", name: job };
      break;
    }
    default:
      owner = { apiVersion: "apps/v1", kind: manifest.kind ?? "ReplicaSet", name };
  }
  metadata.labels = labels;
  metadata.ownerReferences = [{ ...owner, uid: "0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b", controller: true, blockOwnerDeletion: true }];
  const spec = { ...(pod.spec ?? {}) };
  spec.restartPolicy ??= "Always";
  if (spec.automountServiceAccountToken !== false) {
    const token = "kube-api-access-x7k2p";
    const mount = { name: token, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true };
    const withToken = (list: Container[] | undefined) => list?.map((c) => ({ ...c, volumeMounts: [...(c.volumeMounts ?? []), mount] }));
    spec.containers = withToken(spec.containers);
    if (spec.initContainers) spec.initContainers = withToken(spec.initContainers);
    spec.volumes = [
      ...(spec.volumes ?? []),
      {
        name: token,
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
            { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
          ],
        },
      },
    ];
  }
  return { apiVersion: "v1", kind: "Pod", metadata, spec };
}
