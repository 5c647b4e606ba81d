// The pod webhook's claim lookups against the real apiserver (the reads are get on claims and volumes, get/list on
// classes, which the chart grants): a claim on a hostPath PersistentVolume, or unbound in a local-path class, is
// found; a claim on NFS or one not made yet is not, and neither is reported as a failed lookup.
import { CoreV1Api, KubeConfig, StorageV1Api } from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { buildClusterState } from "../../src/admission/state.js";
import { ClaimLookups } from "../../src/kube/claimLookups.js";
import { createReview } from "../unit/pods/support.js";

const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const NS = `claims-${Date.now()}`;

beforeAll(async () => {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createPersistentVolume({ body: { metadata: { name: `${NS}-hostpath` }, spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], hostPath: { path: "/srv/data" } } } });
  await core.createPersistentVolume({ body: { metadata: { name: `${NS}-nfs` }, spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], nfs: { server: "nfs.example", path: "/x" } } } });
  const claim = (name: string, spec: object) => core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: { metadata: { name }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, ...spec } } });
  await kc.makeApiClient(StorageV1Api).createStorageClass({ body: { metadata: { name: `${NS}-local-path` }, provisioner: "rancher.io/local-path" } });
  await claim("on-hostpath", { volumeName: `${NS}-hostpath`, storageClassName: "" });
  await claim("on-nfs", { volumeName: `${NS}-nfs`, storageClassName: "" });
  await claim("unbound-local-path", { storageClassName: `${NS}-local-path` });
});

describe("ClaimLookups", () => {
  it("finds the claims Velero's file-system backup will skip among those a pod being created mounts", async () => {
    const failed: string[] = [];
    const lookups = new ClaimLookups(kc, { onLookupFailed: (what, err) => failed.push(`${what}: ${String(err)}`) });
    const names = ["on-hostpath", "on-nfs", "unbound-local-path", "not-made-yet"];
    const pod = { metadata: { name: "db", namespace: NS }, spec: { volumes: names.map((name) => ({ name, persistentVolumeClaim: { claimName: name } })), containers: [{ name: "db", image: "x" }] } };
    const state = await lookups.prepare(createReview(pod, NS), buildClusterState({ objects: [] }));
    expect(Object.fromEntries(state.hostPathClaims)).toEqual({
      [`${NS}/on-hostpath`]: `its PersistentVolume ${NS}-hostpath is hostPath`,
      [`${NS}/unbound-local-path`]: `its StorageClass ${NS}-local-path (rancher.io/local-path) provisions hostPath volumes`,
    });
    expect(failed).toEqual([]);
  });
});
