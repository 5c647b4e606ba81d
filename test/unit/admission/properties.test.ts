import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { applyPatch } from "../../../src/admission/patch.js";
import { buildClusterState } from "../../../src/admission/state.js";
import type { Pod } from "../../../src/pods/pod.js";
import { splitVolumeList } from "../../../src/velero/annotations.js";
import { NEVER_BACKED_UP_SOURCES } from "../../../src/velero/volumes.js";
import { createReview } from "../pods/support.js";
import { decidePod } from "../../../src/pods/decide.js";
import { policyRef } from "../../../src/policy/types.js";

const volumeNames = ["data", "logs", "cache", "tmp", "config", "token", "default-token-x1", "scratch", "db-0", "dshm"];
const sources = ["persistentVolumeClaim", "emptyDir", "ephemeral", "nfs", "csi", "hostPath", "secret", "configMap", "projected", "downwardAPI"];
const containerNames = ["app", "sidecar", "db", "istio-proxy"];

/** A volume source, including the special cases: claims, memory-backed emptyDirs, secrets-store CSI volumes. */
const sourceArb = (name: string) =>
  fc.oneof(
    fc.constantFrom(...sources).map((source) => ({ [source]: {} })),
    fc.constant({ persistentVolumeClaim: { claimName: `${name}-claim` } }),
    fc.constant({ emptyDir: { medium: "Memory" } }),
    fc.constant({ csi: { driver: "secrets-store.csi.k8s.io" } }),
  );
const volumesArb = fc.uniqueArray(fc.constantFrom(...volumeNames), { maxLength: 7 }).chain((names) =>
  fc.tuple(...names.map((name) => sourceArb(name).map((source) => ({ name, ...source })))),
);

const annotationValue = fc.oneof(
  fc.constantFrom('["sync"]', "Fail", "Continue", "30s", "bad value", "['x']", "", "/bin/sh -c x", "true"),
  fc.array(fc.constantFrom(...volumeNames, " data", "", "nope", "logs ", "data-claim"), { maxLength: 5 }).map((l) => l.join(",")),
  fc.constantFrom("backup-volumes", "backup-volumes-excludes,pre-backup", "post-backup,post-restore", "shop/p", "ns/p0"),
);
const annotationKeys = [
  "backup.velero.io/backup-volumes",
  "backup.velero.io/backup-volumes-excludes",
  "pre.hook.backup.velero.io/command",
  "post.hook.backup.velero.io/command",
  "appsnapshots.io/managed",
  "kubectl.kubernetes.io/default-container",
  "pre.hook.backup.velero.io/on-error",
  "post.hook.restore.velero.io/timeout",
  "post.hook.restore.velero.io/exec-timeout",
  "init.hook.restore.velero.io/container-image",
  "hook.backup.velero.io/command",
  "appsnapshots.io/policy",
  "team.example.com/owner",
];

const podArb: fc.Arbitrary<Pod> = volumesArb.chain((volumes) => {
  const names = volumes.map((v) => v.name);
  const container = (name: string) =>
    fc.record({
      name: fc.constant(name),
      image: fc.constant("example/image:1"),
      volumeMounts: fc.subarray(names).map((list) => list.map((n) => ({ name: n, mountPath: `/mnt/${n}` }))),
      volumeDevices: fc.subarray(names, { maxLength: Math.min(1, names.length) }).map((list) => list.map((n) => ({ name: n, devicePath: `/dev/${n}` }))),
    });
  const initContainer = (name: string) =>
    fc.record(
      {
        name: fc.constant(name),
        image: fc.constant("example/init:1"),
        securityContext: fc.record({ runAsNonRoot: fc.boolean(), runAsUser: fc.integer({ min: 0, max: 70000 }) }, { requiredKeys: [] }),
        volumeMounts: fc.subarray(names).map((list) => list.map((n) => ({ name: n, mountPath: `/init/${n}` }))),
      },
      { requiredKeys: ["name", "image"] },
    );
  return fc.record(
    {
      apiVersion: fc.constant("v1"),
      kind: fc.constant("Pod"),
      metadata: fc.record(
        {
          name: fc.constant("p"),
          labels: fc.dictionary(fc.constantFrom("app", "tier", "velero.io/restore-name", "appsnapshots.io/ignore"), fc.constantFrom("web", "db", "r1", "true", "false"), {
            maxKeys: 3,
          }),
          annotations: fc.dictionary(fc.constantFrom(...annotationKeys), annotationValue, { maxKeys: 5 }),
          uid: fc.constant("u"),
          ownerReferences: fc.constantFrom([{ apiVersion: "batch/v1", kind: "Job", name: "j", uid: "j", controller: true }], [
            { apiVersion: "apps/v1", kind: "ReplicaSet", name: "r", uid: "r", controller: true },
          ]),
        },
        { requiredKeys: ["name"] },
      ),
      spec: fc.record(
        {
          containers: fc.uniqueArray(fc.constantFrom(...containerNames), { minLength: 1, maxLength: 3 }).chain((cs) => fc.tuple(...cs.map(container))),
          initContainers: fc
            .uniqueArray(fc.constantFrom("restore-wait", "istio-init", "restic-wait", "migrate", "restore-hook"), { maxLength: 3 })
            .chain((cs) => fc.tuple(...cs.map(initContainer))),
          volumes: fc.constant(volumes),
          securityContext: fc.record({ runAsNonRoot: fc.boolean(), runAsUser: fc.integer({ min: 0, max: 70000 }) }, { requiredKeys: [] }),
          nodeName: fc.constant("node-1"),
          restartPolicy: fc.constantFrom("Always", "Never", "OnFailure"),
        },
        { requiredKeys: ["containers", "volumes"] },
      ),
    },
    { requiredKeys: ["apiVersion", "kind", "metadata", "spec"] },
  );
});

const selectorArb = fc.option(fc.record({ matchLabels: fc.dictionary(fc.constantFrom("app", "tier"), fc.constantFrom("web", "db"), { maxKeys: 1 }) }), { nil: undefined });
const hookArb = fc.option(
  fc.record({ container: fc.option(fc.constantFrom(...containerNames), { nil: undefined }), command: fc.array(fc.string(), { minLength: 1, maxLength: 3 }) }),
  { nil: undefined },
);
const initHookArb = fc.option(
  fc.record(
    {
      image: fc.constant("busybox:1.36"),
      name: fc.constantFrom("restore-hook", "migrate", "app"),
      command: fc.constant(["sh", "-c", "true"]),
      volumeMounts: fc.array(fc.record({ name: fc.constantFrom(...volumeNames), mountPath: fc.option(fc.constant("/x"), { nil: undefined }) }), { maxLength: 2 }),
      runAsUser: fc.option(fc.constant(999), { nil: undefined }),
    },
    { requiredKeys: ["image", "command"] },
  ),
  { nil: undefined },
);
const policyArb = (kind: "SnapshotPolicy" | "ClusterSnapshotPolicy", name: string) =>
  fc.record({
    apiVersion: fc.constant("appsnapshots.io/v1alpha1"),
    kind: fc.constant(kind),
    metadata: fc.constant(kind === "SnapshotPolicy" ? { name, namespace: "ns" } : { name }),
    spec: fc.record({
      podSelector: selectorArb,
      volumes: fc.record({
        mode: fc.constantFrom("OptIn", "OptOut", "None"),
        include: fc.array(fc.constantFrom("*", "d*", "?ache", "logs", "t*", "dshm", "*a*?*"), { minLength: 1, maxLength: 2 }),
        exclude: fc.array(fc.constantFrom("tmp", "*-0", "c*"), { maxLength: 2 }),
        sources: fc.subarray(["persistentVolumeClaim", "emptyDir", "ephemeral", "nfs", "csi"], { minLength: 1 }),
      }),
      hooks: fc
        .record({ preBackup: hookArb, postBackup: hookArb, postRestore: hookArb, initRestore: initHookArb })
        .map((h) => JSON.parse(JSON.stringify(h)) as object),
    }),
  });

const stateArb = fc
  .tuple(fc.array(policyArb("SnapshotPolicy", "x"), { maxLength: 2 }), fc.array(policyArb("ClusterSnapshotPolicy", "c"), { maxLength: 2 }))
  .map(([namespaced, cluster]) =>
    buildClusterState({
      objects: [...namespaced.map((p, i) => ({ ...p, metadata: { ...p.metadata, name: `p${i}` } })), ...cluster.map((p, i) => ({ ...p, metadata: { name: `c${i}` } }))],
    }),
  );

/** The name of the init-restore hook of the policy that applies to the pod, if any. */
function initHookName(pod: Pod, state: ReturnType<typeof buildClusterState>): string | undefined {
  const ref = decidePod(pod, "ns", state).policy;
  const policies = [...(state.policiesByNamespace.get("ns") ?? []), ...state.clusterPolicies];
  return policies.find((p) => policyRef(p) === ref)?.spec.hooks.initRestore?.name;
}

type Patch = Parameters<typeof applyPatch>[1];
const patchOf = (encoded: string | undefined): Patch => (encoded ? (JSON.parse(Buffer.from(encoded, "base64").toString()) as Patch) : []);

describe("pod admission properties", () => {
  it("the patch applies cleanly, admitting the result again changes nothing, and only annotations and init containers change", () => {
    fc.assert(
      fc.property(podArb, stateArb, (pod, state) => {
        expect(state.problems).toEqual([]);
        const first = admit(createReview(pod, "ns"), state);
        expect(first.response.allowed).toBe(true);
        const mutated = applyPatch(pod, patchOf(first.response.patch));
        // The patch (diffed per subtree) reproduces exactly the pod the rules decided on.
        expect(mutated).toEqual(decidePod(pod, "ns", state).pod);

        // Idempotence (a reinvocation sees our own output): no patch, and nothing new to say. With a
        // policy applied, no warning at all; without one, at most the same lint of the pod's own annotations.
        const second = admit(createReview(mutated, "ns"), state);
        expect(second.response.patch).toBeUndefined();
        if (decidePod(pod, "ns", state).policy !== undefined) expect(second.response.warnings).toBeUndefined();
        else for (const warning of second.response.warnings ?? []) expect(first.response.warnings).toContain(warning);

        const strip = (p: Pod) => {
          const copy = structuredClone(p);
          delete copy.metadata!.annotations;
          delete copy.spec!.initContainers;
          return copy;
        };
        expect(strip(mutated)).toEqual(strip(pod));
        // Init containers are only reordered or given a runAsUser, never removed; the one added is
        // a policy's init-restore hook on a restored pod, right after restore-wait (or first).
        const before = (pod.spec!.initContainers ?? []).map((c) => c.name);
        const after = (mutated.spec!.initContainers ?? []).map((c) => c.name);
        const added = after.filter((name) => !before.includes(name));
        expect(after.filter((name) => before.includes(name)).sort()).toEqual([...before].sort());
        if (added.length > 0) {
          expect(pod.metadata?.labels?.["velero.io/restore-name"]).toBeDefined();
          expect(added).toHaveLength(1);
          expect(after.indexOf(added[0]!)).toBe(["restore-wait", "restic-wait"].includes(after[0]!) ? 1 : 0);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("never lists a volume type Velero never backs up", () => {
    fc.assert(
      fc.property(podArb, stateArb, (pod, state) => {
        const mutated = applyPatch(pod, patchOf(admit(createReview(pod, "ns"), state).response.patch));
        const annotations = mutated.metadata?.annotations ?? {};
        for (const key of ["backup.velero.io/backup-volumes", "backup.velero.io/backup-volumes-excludes"]) {
          if (annotations[key] === undefined || annotations[key] === pod.metadata?.annotations?.[key]) continue;
          for (const name of splitVolumeList(annotations[key]).filter((n) => n !== "")) {
            const volume = pod.spec!.volumes!.find((v) => v.name === name);
            expect(volume, `${key} lists "${name}", not a pod volume`).toBeDefined();
            expect(NEVER_BACKED_UP_SOURCES.some((s) => s in volume!)).toBe(false);
            expect(name.startsWith("default-token")).toBe(false);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it("keeps restore-wait first on restored pods and never adds it", () => {
    fc.assert(
      fc.property(podArb, stateArb, (pod, state) => {
        const mutated = applyPatch(pod, patchOf(admit(createReview(pod, "ns"), state).response.patch));
        const before = (pod.spec!.initContainers ?? []).map((c) => c.name);
        // Leave out a policy's init-restore hook (checked above): it may be added or moved.
        const hook = initHookName(pod, state);
        const after = (mutated.spec!.initContainers ?? []).map((c) => c.name).filter((n) => n !== hook);
        const restored = pod.metadata?.labels?.["velero.io/restore-name"] !== undefined && pod.metadata.labels["appsnapshots.io/ignore"] !== "true";
        const waiter = before.find((n) => n === "restore-wait" || n === "restic-wait");
        if (restored && waiter) expect(after[0]).toBe(waiter);
        else expect(after).toEqual(before.filter((n) => n !== hook));
      }),
      { numRuns: 300 },
    );
  });
});
