import { describe, expect, it } from "vitest";
import { decidePod } from "../../../src/pods/decide.js";
import type { Pod } from "../../../src/pods/pod.js";
import { fixturePod, policyYaml, stateFrom } from "./support.js";

const B = "backup.velero.io/backup-volumes";
const E = "backup.velero.io/backup-volumes-excludes";
const annotationsOf = (pod: Pod) => pod.metadata?.annotations ?? {};
const verdict = (decision: ReturnType<typeof decidePod>, name: string) => decision.volumes.find((v) => v.name === name)!;
const withAnnotations = (pod: Pod, annotations: Record<string, string>): Pod => ({ ...pod, metadata: { ...pod.metadata, annotations } });

describe("the same volumes in either Velero mode", () => {
  const pod = fixturePod("database-special-volumes");

  it("selects data and scratch, and excludes /dev/shm and the secrets-store volume in both lists, saying why", () => {
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "volumes: { sources: [persistentVolumeClaim, emptyDir, csi] }")));
    expect(annotationsOf(decision.pod)[B]).toBe("data,scratch");
    expect(annotationsOf(decision.pod)[E]).toBe("dshm,db-secrets");
    expect(decision.volumes.map((v) => [v.name, v.optIn.backedUp, v.optOut.backedUp])).toEqual([
      ["data", true, true],
      ["dshm", false, false],
      ["db-secrets", false, false],
      ["scratch", true, true],
      ["seed", false, false],
    ]);
    expect(verdict(decision, "data")).toMatchObject({ source: "persistentVolumeClaim", claimName: "data-claim" });
    expect(verdict(decision, "dshm").optOut.reason).toBe(
      "listed in backup.velero.io/backup-volumes-excludes: memory-backed emptyDir (RAM, like /dev/shm): policy shop/p takes it only when its include list names it (not via a wildcard)",
    );
    expect(verdict(decision, "db-secrets").optIn.reason).toContain("CSI secrets-store volume");
  });

  it("takes /dev/shm only when the include list names it literally", () => {
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", 'volumes: { include: ["*", "dshm"] }')));
    expect(annotationsOf(decision.pod)[B]).toBe("data,dshm,scratch");
    expect(verdict(decision, "dshm").optOut).toEqual({
      backedUp: true,
      reason: "not listed in backup.velero.io/backup-volumes-excludes: memory-backed emptyDir (RAM, like /dev/shm), named in the include list of policy shop/p",
    });
  });

  it("never selects a volume only init containers mount, and says why (Velero reads regular containers' mounts only)", () => {
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", 'volumes: { include: ["seed", "*"] }')));
    expect(annotationsOf(decision.pod)[B]!.split(",")).not.toContain("seed");
    expect(annotationsOf(decision.pod)[E]!.split(",")).not.toContain("seed");
    const seed = verdict(decision, "seed");
    expect(seed.optIn).toEqual({ backedUp: false, reason: "mounted only by init containers: Velero looks at regular containers' mounts only (pkg/podvolume/backupper.go)" });
    expect(seed.optOut.backedUp).toBe(false);
  });

  it("completes a user's opt-in list with the excludes for opt-out Backups", () => {
    const decision = decidePod(withAnnotations(pod, { [B]: "data" }), "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)[B]).toBe("data");
    expect(annotationsOf(decision.pod)[E]).toBe("dshm,db-secrets,scratch");
    for (const v of decision.volumes) expect(v.optIn.backedUp).toBe(v.optOut.backedUp);
  });

  it("completes a user's opt-out list, never taking /dev/shm silently", () => {
    const decision = decidePod(withAnnotations(pod, { [E]: "scratch" }), "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)[B]).toBe("data");
    expect(annotationsOf(decision.pod)[E]).toBe("scratch,dshm,db-secrets");
    expect(decision.warnings).toContain(
      `${E}: added "dshm", a memory-backed emptyDir (RAM, like /dev/shm): never backed up unless named; list it in ${B} to back it up`,
    );
    for (const v of decision.volumes) expect(v.optIn.backedUp).toBe(v.optOut.backedUp);
  });

  it("keeps both lists when the pod sets both, and warns where the modes would differ", () => {
    const decision = decidePod(withAnnotations(pod, { [B]: "data", [E]: "dshm" }), "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)[B]).toBe("data");
    expect(annotationsOf(decision.pod)[E]).toBe("dshm");
    expect(decision.warnings).toContain(`${B} and ${E} disagree on db-secrets, scratch: the result depends on the Backup's defaultVolumesToFsBackup`);
  });
});

describe("a hand-written list naming the claim instead of the volume", () => {
  it("maps the claim name to its volume, with a warning", () => {
    const pod = withAnnotations(fixturePod("database-special-volumes"), { [B]: "data-claim" });
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)[B]).toBe("data");
    expect(decision.warnings).toContain(`${B}: "data-claim" is a claim name; replaced by "data", the pod volume that mounts it (Velero reads volume names)`);
    expect(verdict(decision, "data").optIn.backedUp).toBe(true);
  });

  it("never turns a non-empty list into an empty one: the policy's selection applies instead", () => {
    const pod = withAnnotations(fixturePod("database-special-volumes"), { [B]: "no-such-volume, dshm-claim" });
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)[B]).toBe("data,scratch");
    expect(decision.warnings).toContain(`${B}: no entry of "no-such-volume, dshm-claim" names a volume Velero can back up; applied policy shop/p instead`);
    expect(annotationsOf(decision.pod)["appsnapshots.io/managed"]).toBe("backup-volumes,backup-volumes-excludes");
  });

  it("keeps an explicitly empty list: the user asked for nothing", () => {
    const pod = withAnnotations(fixturePod("database-special-volumes"), { [B]: "" });
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)[B]).toBe("");
    expect(decision.volumes.filter((v) => v.optOut.backedUp)).toEqual([]);
  });
});

describe("pods Velero never backs up", () => {
  const reason = "a Job pod: Velero backs up volumes of Running pods only (pkg/podvolume/backupper.go), and a Job pod is Completed when a backup finds it";

  it("writes no volume annotation on a Job's pod, warns once, and every verdict says why", () => {
    const decision = decidePod(fixturePod("cronjob-pod"), "shop", stateFrom(policyYaml("p", "hooks: { preBackup: { command: [sync] } }")));
    expect(annotationsOf(decision.pod)).not.toHaveProperty(B);
    expect(annotationsOf(decision.pod)).not.toHaveProperty(E);
    expect(decision.warnings).toEqual([`no volume annotations written: this is ${reason}`]);
    expect(decision.volumes).toEqual([
      { name: "dumps", source: "persistentVolumeClaim", claimName: "pg-dumps", optIn: { backedUp: false, reason }, optOut: { backedUp: false, reason } },
    ]);
  });

  it("treats a pod template with restartPolicy Never or OnFailure (a Job's or CronJob's) the same way", () => {
    const pod = fixturePod("cronjob-pod");
    delete pod.metadata!.ownerReferences;
    pod.spec!.restartPolicy = "Never";
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)).toEqual({ "appsnapshots.io/policy": "shop/p" });
    expect(decision.volumes[0]!.optOut.reason).toMatch(/^a run-to-completion pod \(restartPolicy Never, as in a Job or CronJob\)/);
  });
});
