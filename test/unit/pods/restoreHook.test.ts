import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { decidePod } from "../../../src/pods/decide.js";
import type { Container, Pod } from "../../../src/pods/pod.js";
import { fixturePod, policyYaml, stateFrom } from "./support.js";

const examplePolicies = stateFrom(readFileSync("examples/policies.yaml", "utf8"));

/** The postgres pod of examples/workloads.yaml as the StatefulSet controller creates it. */
function examplePostgresPod(): Pod {
  const sts = parseAllDocuments(readFileSync("examples/workloads.yaml", "utf8"))
    .map((d) => d.toJS() as { kind: string; spec: { template: { metadata: Pod["metadata"]; spec: Pod["spec"] } } })
    .find((o) => o.kind === "StatefulSet")!;
  const template = structuredClone(sts.spec.template);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { ...template.metadata, name: "postgres-0", namespace: "shop" },
    spec: { ...template.spec, volumes: [...(template.spec!.volumes ?? []), { name: "data", persistentVolumeClaim: { claimName: "data-postgres-0" } }] },
  };
}

/** That pod as backed up (with the annotations the webhook gave it) and as Velero recreates it on restore. */
function restoredExamplePod(): Pod {
  const backedUp = decidePod(examplePostgresPod(), "shop", examplePolicies).pod;
  const pod = structuredClone(backedUp);
  pod.metadata!.labels = { ...pod.metadata!.labels, "velero.io/backup-name": "nightly", "velero.io/restore-name": "nightly-1" };
  pod.spec!.initContainers = [
    // As Velero v1.18.2 builds it (pkg/restore/actions/pod_volume_restore_action.go), securityContext copied from postgres.
    {
      name: "restore-wait",
      image: "velero/velero:v1.18.2",
      command: ["/velero-restore-helper"],
      args: ["0f9c"],
      volumeMounts: [{ name: "data", mountPath: "/restores/data" }],
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    },
    ...(pod.spec!.initContainers ?? []),
  ];
  return pod;
}

/** The Pod Security "restricted" rules that apply to one container (k8s.io/pod-security-admission policy checks). */
function restrictedViolations(container: Container, pod: Pod): string[] {
  const sc = (container.securityContext ?? {}) as Record<string, unknown>;
  const podSc = (pod.spec?.securityContext ?? {}) as Record<string, unknown>;
  const problems: string[] = [];
  if (sc.privileged === true) problems.push("privileged");
  if (sc.allowPrivilegeEscalation !== false) problems.push("allowPrivilegeEscalation != false");
  const caps = (sc.capabilities ?? {}) as { drop?: string[]; add?: string[] };
  if (!caps.drop?.includes("ALL")) problems.push("capabilities.drop lacks ALL");
  if ((caps.add ?? []).some((c) => c !== "NET_BIND_SERVICE")) problems.push("capabilities.add");
  if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) problems.push("runAsNonRoot != true");
  if ((sc.runAsUser ?? podSc.runAsUser) === 0) problems.push("runAsUser = 0");
  const seccomp = ((sc.seccompProfile ?? podSc.seccompProfile) as { type?: string } | undefined)?.type;
  if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push("seccompProfile");
  return problems;
}

describe("init-restore hooks the webhook inserts into restored pods", () => {
  it("needs no policy at restore time: Velero restores pods before the SnapshotPolicy, so the hook travels in the pod's annotation", () => {
    const noPolicies = stateFrom("");
    const decision = decidePod(restoredExamplePod(), "shop-restored", noPolicies);
    const init = decision.pod.spec!.initContainers!;
    expect(init.map((c) => c.name)).toEqual(["restore-wait", "clear-stale-pid"]);
    expect(init[1]!.volumeMounts).toEqual([{ name: "data", mountPath: "/var/lib/postgresql/data" }]);
    expect(restrictedViolations(init[1]!, decision.pod)).toEqual([]);
    expect(decision.policy).toBeUndefined();
  });

  it("checks the annotation and hardens its securityContext whoever wrote it; a pod that is not restored gets nothing", () => {
    const pod = restoredExamplePod();
    const annotations = pod.metadata!.annotations!;
    const stored = JSON.parse(annotations["appsnapshots.io/restore-hook"]!) as Container;
    annotations["appsnapshots.io/restore-hook"] = JSON.stringify({ ...stored, securityContext: { privileged: true, runAsUser: 0, allowPrivilegeEscalation: true } });
    const hardened = decidePod(pod, "other", stateFrom("")).pod.spec!.initContainers![1]!;
    expect(hardened.securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 1000, capabilities: { drop: ["ALL"] } });
    expect(hardened.securityContext).not.toHaveProperty("privileged");

    for (const value of ["not json", "[]", JSON.stringify({ ...stored, hostPID: true }), JSON.stringify({ ...stored, name: "Bad_Name" }), JSON.stringify({ ...stored, command: [] })]) {
      annotations["appsnapshots.io/restore-hook"] = value;
      const decision = decidePod(pod, "other", stateFrom(""));
      expect(decision.pod.spec!.initContainers!.map((c) => c.name), value).toEqual(["restore-wait"]);
      expect(decision.warnings, value).toEqual(["appsnapshots.io/restore-hook is not an init container app-snapshots wrote; no init-restore hook added"]);
    }
    const notRestored = examplePostgresPod();
    notRestored.metadata!.annotations = { "appsnapshots.io/restore-hook": JSON.stringify(stored) };
    expect(decidePod(notRestored, "other", stateFrom("")).pod.spec!.initContainers).toBeUndefined();
  });

  it("examples/policies.yaml's clear-stale-pid: after restore-wait, data mounted where postgres has it, restricted-compliant, as postgres' user", () => {
    const pod = restoredExamplePod();
    const decision = decidePod(pod, "shop", examplePolicies);
    const init = decision.pod.spec!.initContainers!;
    expect(init.map((c) => c.name)).toEqual(["restore-wait", "clear-stale-pid"]);
    expect(init[1]).toEqual({
      name: "clear-stale-pid",
      image: "busybox:1.36",
      command: ["sh", "-c", "rm -f /var/lib/postgresql/data/postmaster.pid"],
      volumeMounts: [{ name: "data", mountPath: "/var/lib/postgresql/data" }],
      securityContext: {
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
        runAsNonRoot: true,
        runAsUser: 999,
        runAsGroup: 999,
        seccompProfile: { type: "RuntimeDefault" },
      },
    });
    expect(restrictedViolations(init[1]!, decision.pod)).toEqual([]);
    expect(decision.warnings).toEqual([]);
  });

  it("writes no init.hook.restore.velero.io annotation (Velero would add a second container without mounts)", () => {
    const annotations = decidePod(examplePostgresPod(), "shop", examplePolicies).pod.metadata!.annotations!;
    expect(Object.keys(annotations).filter((k) => k.startsWith("init.hook.restore.velero.io/"))).toEqual([]);
  });

  it("is not added to pods that are not restored", () => {
    const decision = decidePod(examplePostgresPod(), "shop", examplePolicies);
    expect(decision.pod.spec!.initContainers).toBeUndefined();
  });

  it("is idempotent: a reinvocation changes nothing and says nothing", () => {
    const once = decidePod(restoredExamplePod(), "shop", examplePolicies).pod;
    const twice = decidePod(structuredClone(once), "shop", examplePolicies);
    expect(twice.pod).toEqual(once);
    expect(twice.pod.spec!.initContainers).toEqual(once.spec!.initContainers);
    expect(twice.warnings).toEqual([]);
  });

  it("replaces a stale copy (a pod backed up after an earlier restore) and puts it right after restore-wait, before other init containers", () => {
    const pod = restoredExamplePod();
    pod.spec!.initContainers = [
      { name: "istio-init", image: "docker.io/istio/proxyv2:1.24.0" },
      pod.spec!.initContainers![0]!,
      { name: "clear-stale-pid", image: "busybox:1.35", command: ["true"] },
    ];
    const init = decidePod(pod, "shop", examplePolicies).pod.spec!.initContainers!;
    expect(init.map((c) => c.name)).toEqual(["restore-wait", "clear-stale-pid", "istio-init"]);
    expect(init[1]!.image).toBe("busybox:1.36");
  });

  it("goes first when the restored pod has no restore-wait (its volumes came from snapshots)", () => {
    const pod = restoredExamplePod();
    pod.spec!.initContainers = [{ name: "migrate", image: "app:1" }];
    expect(decidePod(pod, "shop", examplePolicies).pod.spec!.initContainers!.map((c) => c.name)).toEqual(["clear-stale-pid", "migrate"]);
  });

  it("replaces the broken container Velero built from annotations an earlier app-snapshots wrote", () => {
    const pod = restoredExamplePod();
    Object.assign(pod.metadata!.annotations!, {
      "init.hook.restore.velero.io/container-image": "busybox:1.36",
      "init.hook.restore.velero.io/container-name": "clear-stale-pid",
      "init.hook.restore.velero.io/command": '["sh","-c","rm -f /var/lib/postgresql/data/postmaster.pid"]',
    });
    pod.spec!.initContainers!.splice(1, 0, { name: "clear-stale-pid", image: "busybox:1.36", command: ["sh", "-c", "rm -f /var/lib/postgresql/data/postmaster.pid"] });
    const init = decidePod(pod, "shop", examplePolicies).pod.spec!.initContainers!;
    expect(init.map((c) => c.name)).toEqual(["restore-wait", "clear-stale-pid"]);
    expect(init[1]!.volumeMounts).toEqual([{ name: "data", mountPath: "/var/lib/postgresql/data" }]);
  });

  it("leaves a pod's own init.hook annotations to Velero and adds nothing, with a warning", () => {
    const pod = fixturePod("restored-restore-wait-not-first");
    pod.metadata!.annotations!["init.hook.restore.velero.io/container-image"] = "alpine:3";
    pod.metadata!.annotations!["init.hook.restore.velero.io/command"] = '["true"]';
    const state = stateFrom(policyYaml("p", "hooks: { initRestore: { image: busybox:1.36, command: ['true'] } }", "shop-restored"));
    const decision = decidePod(pod, "shop-restored", state);
    expect(decision.pod.spec!.initContainers!.map((c) => c.name)).toEqual(["restore-wait", "istio-init"]);
    expect(decision.warnings).toContain("pod sets its own init.hook.restore.velero.io/* hook; the init-restore hook of policy shop-restored/p was not added");
  });

  it("mounts the volumes the policy names, at the policy's path or the application's, with the policy's uid", () => {
    const pod = fixturePod("restored-restore-wait-not-first");
    const state = stateFrom(
      policyYaml(
        "p",
        "hooks: { initRestore: { image: busybox:1.36, name: fix, command: ['true'], runAsUser: 70, volumeMounts: [{ name: data }, { name: data, mountPath: /again }, { name: nope }] } }",
        "shop-restored",
      ),
    );
    const decision = decidePod(pod, "shop-restored", state);
    const hook = decision.pod.spec!.initContainers!.find((c) => c.name === "fix")!;
    expect(hook.volumeMounts).toEqual([
      { name: "data", mountPath: "/var/lib/postgresql/data" },
      { name: "data", mountPath: "/again" },
    ]);
    expect(hook.securityContext).toMatchObject({ runAsUser: 70, runAsNonRoot: true });
    expect(decision.warnings).toContain('init-restore hook fix of policy shop-restored/p: the pod has no volume "nope"; not mounted');
  });

  it("runs as uid 1000 with a warning when nothing names a user", () => {
    const pod = fixturePod("restored-restore-wait-not-first");
    const state = stateFrom(policyYaml("p", "hooks: { initRestore: { image: busybox:1.36, command: ['true'] } }", "shop-restored"));
    const decision = decidePod(pod, "shop-restored", state);
    const hook = decision.pod.spec!.initContainers!.find((c) => c.name === "restore-hook")!;
    expect(hook.securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true });
    expect(restrictedViolations(hook, decision.pod)).toEqual([]);
    expect(decision.warnings.some((w) => w.startsWith("init-restore hook restore-hook of policy shop-restored/p runs as uid 1000"))).toBe(true);
  });
});
