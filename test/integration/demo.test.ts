import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("make demo (DEMO_ONCE=1)", () => {
  it("runs the showcase end to end on its own control plane and exits 0", () => {
    const result = spawnSync(process.execPath, ["dist/test/cluster/demo.js"], { env: { ...process.env, DEMO_ONCE: "1" }, encoding: "utf8", timeout: 120_000 });
    expect(result.stderr, result.stdout).toBe("");
    expect(result.status, result.stdout).toBe(0);
    expect(result.stdout).toContain("pod shop/postgres-0: the webhook added 18 annotation(s)");
    expect(result.stdout).toContain("+ backup.velero.io/backup-volumes: data");
    expect(result.stdout).toContain("! app-snapshots: pre.hook.backup.velero.io/command has spaces but is not a JSON array");
    expect(result.stdout).toContain("rejected (HTTP 422):");
    expect(result.stdout).toContain("spec.config.server: is required for replicated.com/nfs");
    expect(result.stdout).toMatch(/kubeconfig: \/tmp\/app-snapshots-cp-\d+-\w+\/kubeconfig/);
  }, 130_000);
});
