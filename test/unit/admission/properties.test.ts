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

const volumeNames = ["data", "logs", "cache", "tmp", "config", "token", "default-token-x1", "scratch", "db-0"];
const sources = ["persistentVolumeClaim", "emptyDir", "ephemeral", "nfs", "csi", "hostPath", "secret", "configMap", "projected", "downwardAPI"];
const containerNames = ["app", "sidecar", "db", "istio-proxy"];

const volumesArb = fc.uniqueArray(fc.constantFrom(...volumeNames), { maxLength: 7 }).chain((names) =>
  fc.tuple(...names.map((name) => fc.constantFrom(...sources).map((source) => ({ name, [source]: {} })))),
);

const annotationValue = fc.oneof(
  fc.constantFrom('["sync"]', "Fail", "Continue", "30s", "bad value", "['x']", "", "/bin/sh -c x", "true"),
  fc.array(fc.constantFrom(...volumeNames, " data", "", "nope", "logs "), { maxLength: 5 }).map((l) => l.join(",")),
);
const annotationKeys = [
  "backup.velero.io/backup-volumes",
  "backup.velero.io/backup-volumes-excludes",
  "pre.hook.backup.velero.io/command",
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
        },
        { requiredKeys: ["name"] },
      ),
      spec: fc.record(
        {
          containers: fc.uniqueArray(fc.constantFrom(...containerNames), { minLength: 1, maxLength: 3 }).chain((cs) => fc.tuple(...cs.map(container))),
          initContainers: fc
            .uniqueArray(fc.constantFrom("restore-wait", "istio-init", "restic-wait", "migrate"), { maxLength: 3 })
            .chain((cs) => fc.tuple(...cs.map(initContainer))),
          volumes: fc.constant(volumes),
          securityContext: fc.record({ runAsNonRoot: fc.boolean(), runAsUser: fc.integer({ min: 0, max: 70000 }) }, { requiredKeys: [] }),
          nodeName: fc.constant("node-1"),
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
const policyArb = (kind: "SnapshotPolicy" | "ClusterSnapshotPolicy", name: string) =>
  fc.record({
    apiVersion: fc.constant("appsnapshots.io/v1alpha1"),
    kind: fc.constant(kind),
    metadata: fc.constant(kind === "SnapshotPolicy" ? { name, namespace: "ns" } : { name }),
    spec: fc.record({
      podSelector: selectorArb,
      volumes: fc.record({
        mode: fc.constantFrom("OptIn", "OptOut", "None"),
        include: fc.array(fc.constantFrom("*", "d*", "?ache", "logs", "t*"), { minLength: 1, maxLength: 2 }),
        exclude: fc.array(fc.constantFrom("tmp", "*-0", "c*"), { maxLength: 2 }),
        sources: fc.subarray(["persistentVolumeClaim", "emptyDir", "ephemeral", "nfs", "csi"], { minLength: 1 }),
      }),
      hooks: fc.record({ preBackup: hookArb, postBackup: hookArb, postRestore: hookArb }).map((h) => JSON.parse(JSON.stringify(h)) as object),
    }),
  });

const stateArb = fc
  .tuple(fc.array(policyArb("SnapshotPolicy", "x"), { maxLength: 2 }), fc.array(policyArb("ClusterSnapshotPolicy", "c"), { maxLength: 2 }))
  .map(([namespaced, cluster]) =>
    buildClusterState({
      objects: [...namespaced.map((p, i) => ({ ...p, metadata: { ...p.metadata, name: `p${i}` } })), ...cluster.map((p, i) => ({ ...p, metadata: { name: `c${i}` } }))],
    }),
  );

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

        const second = admit(createReview(mutated, "ns"), state);
        expect(second.response.patch).toBeUndefined();

        const strip = (p: Pod) => {
          const copy = structuredClone(p);
          delete copy.metadata!.annotations;
          delete copy.spec!.initContainers;
          return copy;
        };
        expect(strip(mutated)).toEqual(strip(pod));
        // Init containers are only reordered or given a runAsUser, never added or removed.
        expect((mutated.spec!.initContainers ?? []).map((c) => c.name).sort()).toEqual((pod.spec!.initContainers ?? []).map((c) => c.name).sort());
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
        const after = (mutated.spec!.initContainers ?? []).map((c) => c.name);
        const restored = pod.metadata?.labels?.["velero.io/restore-name"] !== undefined && pod.metadata.labels["appsnapshots.io/ignore"] !== "true";
        const waiter = before.find((n) => n === "restore-wait" || n === "restic-wait");
        if (restored && waiter) expect(after[0]).toBe(waiter);
        else expect(after).toEqual(before);
      }),
      { numRuns: 300 },
    );
  });
});
