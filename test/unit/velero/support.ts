import type { AdmissionReview } from "../../../src/admission/review.js";
import { admissionReview } from "../../cluster/reviews.js";
import { buildClusterState, type ClusterState } from "../../../src/admission/state.js";

export const NS = "velero";

export function bsl(name: string, spec: Record<string, unknown>, extra: { annotations?: Record<string, string>; namespace?: string } = {}) {
  return {
    apiVersion: "velero.io/v1",
    kind: "BackupStorageLocation",
    metadata: { name, namespace: extra.namespace ?? NS, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec,
  };
}

export const awsSpec = (overrides: Record<string, unknown> = {}, config: Record<string, string> = {}) => ({
  provider: "aws",
  objectStorage: { bucket: "backups", prefix: "cluster-a" },
  config: { region: "us-east-1", s3Url: "http://storage.example:9000", s3ForcePathStyle: "true", ...config },
  credential: { name: "cloud-credentials", key: "cloud" },
  ...overrides,
});

export const secret = (name: string, keys: string[]) => ({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: NS }, data: Object.fromEntries(keys.map((k) => [k, "c2VjcmV0"])) });
export const veleroDeployment = (tag: string) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "velero", namespace: NS },
  spec: { template: { spec: { containers: [{ name: "velero", image: `velero/velero:${tag}` }] } } },
});
export const node = (name: string) => ({ apiVersion: "v1", kind: "Node", metadata: { name } });

export function veleroState(objects: unknown[], snapshotLocationsKnown = false): ClusterState {
  return buildClusterState({ objects: [secret("cloud-credentials", ["cloud"]), ...objects], snapshotLocationsKnown });
}

export function veleroReview(
  kind: "BackupStorageLocation" | "Backup" | "Schedule" | "Restore",
  operation: "CREATE" | "UPDATE" | "DELETE",
  object: unknown,
  oldObject?: unknown,
  username = "kubernetes-admin",
): AdmissionReview {
  const resource = { BackupStorageLocation: "backupstoragelocations", Backup: "backups", Schedule: "schedules", Restore: "restores" }[kind];
  const meta = ((object ?? oldObject) as { metadata: { name: string; namespace?: string } }).metadata;
  const review = admissionReview({ group: "velero.io", kind, resource, namespace: meta.namespace ?? NS, name: meta.name, operation, object: operation === "DELETE" ? null : object, oldObject, uid: "b1" });
  return { ...review, request: { ...review.request, userInfo: { username, groups: ["system:authenticated"] } } };
}
