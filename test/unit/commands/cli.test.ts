import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { policyCrdsYaml } from "../../../src/policy/crd.js";
import { createReview, fixturePod } from "../pods/support.js";
import { veleroReview } from "../velero/support.js";

const cli = (args: string[], input?: string) => spawnSync(process.execPath, ["dist/src/cli.js", ...args], { input, encoding: "utf8" });

describe("app-snapshots review", () => {
  it("prints the AdmissionReview response for a review on stdin, with state from files", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.labels!.tier = "database";
    const result = cli(["review", "--state", "examples/policies.yaml"], JSON.stringify(createReview(pod)));
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { response: { allowed: boolean; patch: string } };
    expect(out.response.allowed).toBe(true);
    const patch = JSON.parse(Buffer.from(out.response.patch, "base64").toString()) as Array<{ value: Record<string, string> }>;
    expect(patch[0]!.value["appsnapshots.io/policy"]).toBe("shop/databases");
  });

  it.each([
    ["not JSON", "hello", /^app-snapshots review: input is not JSON: /],
    ["JSON but not a review", '{"kind":"Pod"}', /^app-snapshots review: not an AdmissionReview: apiVersion/],
  ])("exits 2 with a one-line error for %s", (_name, input, message) => {
    const result = cli(["review"], input);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("exits 2 naming a missing state file", () => {
    const result = cli(["review", "--state", "no/such/file.yaml"], JSON.stringify(createReview(fixturePod("postgres-statefulset"))));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("no/such/file.yaml");
  });
});

describe("app-snapshots review of Velero objects", () => {
  it("judges a BackupStorageLocation against the objects in the state files", () => {
    const object = { apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name: "twin", namespace: "velero" }, spec: { provider: "aws", objectStorage: { bucket: "velero", prefix: "cluster-a" }, config: { region: "us-east-1", s3Url: "http://app-snapshots-storage.app-snapshots.svc:9000" } } };
    const review = veleroReview("BackupStorageLocation", "CREATE", object);
    const result = cli(["review", "--state", "examples/velero.yaml"], JSON.stringify(review));
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { response: { allowed: boolean; status: { code: number; message: string } } };
    expect(out.response.allowed).toBe(false);
    expect(out.response.status.code).toBe(422);
    expect(out.response.status.message).toContain('bucket "velero" prefix "cluster-a" is also used by BackupStorageLocation velero/default');
  });
});

describe("app-snapshots explain", () => {
  it("explains the pod template of a StatefulSet: policy, annotations, warnings", () => {
    const result = cli(["explain", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("StatefulSet shop/postgres (pod template)");
    expect(result.stdout).toContain("  policy: shop/databases");
    expect(result.stdout).toContain("    backup.velero.io/backup-volumes: data");
    expect(result.stdout).toContain('    pre.hook.backup.velero.io/command: ["/bin/sh","-c",');
  });

  it("says when no policy matches, and when a kind has no pods", () => {
    const manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\n---\napiVersion: v1\nkind: Pod\nmetadata: { name: p, namespace: empty }\nspec: { containers: [{ name: a, image: x }] }\n";
    const result = cli(["explain", "-f", "-"], manifest);
    expect(result.stdout).toContain("ConfigMap default/c: not a Pod or a workload with a pod template; app-snapshots does not change it.");
    expect(result.stdout).toContain("Pod empty/p\n  policy: none matches (no annotations added)");
  });
});

describe("app-snapshots crds", () => {
  it("matches the chart's CRD file (run 'make crds' after changing src/policy/crd.ts)", () => {
    expect(readFileSync("chart/app-snapshots/crds/appsnapshots.io_policies.yaml", "utf8")).toBe(policyCrdsYaml());
    expect(cli(["crds"]).stdout).toBe(policyCrdsYaml());
  });
});
