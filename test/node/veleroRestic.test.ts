// Velero of the KOTS era on the real node (issue 16, scenario B.1): Velero 1.16 with restic file-system backup,
// storing through our chart's S3 endpoint where KOTS put MinIO in front of an NFS or hostPath volume. The same
// restricted app as scenario A is backed up by restic, deleted with its namespace, and restored, data equal.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../cluster/wait.js";
import { withoutNode } from "./gate.js";
import { kotsStack, VeleroScenario } from "./veleroScenario.js";

let scenario: VeleroScenario | undefined;

beforeAll(async () => {
  if (withoutNode) return;
  scenario = await VeleroScenario.start(kotsStack());
}, 600_000);

afterAll(async () => {
  await scenario?.stop();
});

describe.skipIf(withoutNode)("Velero 1.16 with restic through our S3 endpoint, on the real node", () => {
  it("backs up the restricted app with restic and its hooks, and restores it after the namespace is gone, data equal", async () => {
    if (!scenario) throw new Error("the real node with Velero did not start");
    const on = scenario;
    expect(on.velero(["version", "--client-only"])).toContain("Version: v1.16.");
    const before = await on.createApp();
    on.backUp("b1", "restic");
    // restic's repository is in our store, beside Velero's objects.
    expect(on.kubectl(["-n", "velero", "get", "backuprepositories", "-o", "jsonpath={.items[*].spec.repositoryType}"])).toBe("restic");
    const pod = await on.deleteAndRestore("b1", "r1");
    expect(pod.spec!.initContainers![0]!.name).toBe("restore-wait");
    expect(on.appData()).toEqual(before);
    await until("the post-restore hook's file", () => Promise.resolve(on.exec("cat /cache/restored-from-dump.txt 2>/dev/null || true").trim() === "20000" ? true : undefined), 60_000);
    console.log(`[velero-restic] timings (s): ${JSON.stringify(on.timings)}`);
  });
});
