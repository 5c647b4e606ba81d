import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { policyCrdsYaml } from "../../../src/policy/crd.js";
import { createReview, fixturePod } from "../pods/support.js";
import { veleroReview } from "../velero/support.js";

const cli = (args: string[], input?: string) => spawnSync(process.execPath, ["dist/src/cli.js", ...args], { input, encoding: "utf8" });
const dir = mkdtempSync(join(tmpdir(), "cli-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** Writes a file for a test and returns its path. */
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

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

  it("reads the AdmissionReview as YAML too, from a file given with -f", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.labels!.tier = "database";
    const review = file("review.yaml", stringify(createReview(pod)));
    const result = cli(["review", "--state", "examples/policies.yaml", "-f", review]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { response: { allowed: boolean; patch: string } };
    const patch = JSON.parse(Buffer.from(out.response.patch, "base64").toString()) as Array<{ value: Record<string, string> }>;
    expect(patch[0]!.value["appsnapshots.io/policy"]).toBe("shop/databases");
  });

  it.each([
    ["neither YAML nor JSON", "{kind: [}", /^app-snapshots review: standard input: document 1: .* at line 1, column \d+$/],
    ["a string", "hello", /^app-snapshots review: not an AdmissionReview: /],
    ["JSON but not a review", '{"kind":"Pod"}', /^app-snapshots review: not an AdmissionReview: apiVersion/],
    ["two documents", "kind: A\n---\nkind: B\n", /^app-snapshots review: standard input holds 2 objects; give exactly one AdmissionReview$/],
    ["nothing", "", /^app-snapshots review: standard input holds 0 objects; give exactly one AdmissionReview$/],
  ])("exits 2 with a one-line error for %s", (_name, input, message) => {
    const result = cli(["review"], input);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr.trimEnd()).toMatch(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("exits 2 with one line naming a missing input file", () => {
    const result = cli(["review", "-f", "no/such/review.json"]);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("app-snapshots review: cannot read no/such/review.json: no such file\n");
  });

  it("exits 2 with one line naming a missing state file", () => {
    const result = cli(["review", "--state", "no/such/file.yaml"], JSON.stringify(createReview(fixturePod("postgres-statefulset"))));
    expect(result.status).toBe(2);
    expect(result.stderr).toBe("app-snapshots review: cannot read no/such/file.yaml: no such file\n");
  });
});

describe("app-snapshots review of Velero objects", () => {
  it("judges a BackupStorageLocation against the objects in the state files", () => {
    const object = { apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name: "twin", namespace: "velero" }, spec: { provider: "aws", objectStorage: { bucket: "velero", prefix: "cluster-a" }, config: { region: "us-east-1", s3Url: "http://app-snapshots-storage.app-snapshots.svc:9000" } } };
    const review = veleroReview("BackupStorageLocation", "CREATE", object);
    const result = cli(["review", "--state", "examples/velero.yaml"], JSON.stringify(review));
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { response: { allowed: boolean; warnings: string[] } };
    expect(out.response.allowed).toBe(true);
    expect(out.response.warnings.join("\n")).toContain('bucket "velero" prefix "cluster-a" is also used by BackupStorageLocation velero/default');
  });

  it("denies, from a YAML review, a Backup naming a location the state files do not have", () => {
    const object = { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "b1", namespace: "velero" }, spec: { storageLocation: "nowhere" } };
    const result = cli(["review", "--state", "examples/velero.yaml"], stringify(veleroReview("Backup", "CREATE", object)));
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { response: { allowed: boolean; status: { code: number; message: string } } };
    expect(out.response.allowed).toBe(false);
    expect(out.response.status.code).toBe(422);
    expect(out.response.status.message).toContain("BackupStorageLocation velero/nowhere does not exist");
  });
});

/** `helm template` output of a stateful chart: no namespaces, comments, and kinds that create no pods. */
const CHART = `---
# Source: pg/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata: { name: pg }
---
# Source: pg/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata: { name: pg-config }
data: { postgresql.conf: "max_connections = 100" }
---
# Source: pg/templates/service.yaml
apiVersion: v1
kind: Service
metadata: { name: pg }
spec: { ports: [{ port: 5432 }] }
---
# Source: pg/templates/statefulset.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: pg }
spec:
  serviceName: pg
  selector: { matchLabels: { app: pg } }
  template:
    metadata: { labels: { app: pg, tier: database } }
    spec:
      containers:
        - name: postgresql
          image: postgres:17
          volumeMounts:
            - { name: data, mountPath: /var/lib/postgresql/data }
            - { name: dshm, mountPath: /dev/shm }
      volumes:
        - { name: dshm, emptyDir: { medium: Memory } }
  volumeClaimTemplates:
    - metadata: { name: data }
      spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 8Gi } } }
---
# Source: pg/templates/backup-cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata: { name: pg-dump }
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: dump
              image: postgres:17
              volumeMounts: [{ name: dumps, mountPath: /dumps }]
          volumes:
            - { name: dumps, persistentVolumeClaim: { claimName: pg-dumps } }
`;

const POD = "apiVersion: v1\nkind: Pod\nmetadata: { name: p, namespace: empty }\nspec: { containers: [{ name: a, image: x }] }\n";

interface JsonReport {
  workloads: Array<{
    kind: string;
    namespace: string;
    name: string;
    policy: string | null;
    skipped: string | null;
    annotationsSet: Array<{ key: string; value: string }>;
    warnings: string[];
    volumes: Array<{ name: string; claimName?: string; optIn: { backedUp: boolean; reason: string }; optOut: { backedUp: boolean; reason: string } }>;
  }>;
  stateProblems: string[];
}

describe("app-snapshots explain", () => {
  it("explains the pod template of a StatefulSet: policy, annotations, warnings", () => {
    const result = cli(["explain", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("StatefulSet shop/postgres (pod template)");
    expect(result.stdout).toContain("  policy: shop/databases");
    expect(result.stdout).toContain("    backup.velero.io/backup-volumes: data");
    expect(result.stdout).toContain('    pre.hook.backup.velero.io/command: ["/bin/sh","-c",');
  });

  it("prints a verdict per volume for both Velero modes, and why", () => {
    const result = cli(["explain", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml"]);
    const lines = result.stdout.split("\n");
    const header = lines.indexOf("    VOLUME  SOURCE                 OPT-IN    OPT-OUT");
    expect(header).toBeGreaterThan(0);
    // The StatefulSet's table comes first: its template volume, then its claim template's volume.
    expect(lines.slice(header + 1, header + 3)).toEqual(["    tmp     emptyDir               skipped   skipped", "    data    claim data-postgres-0  selected  selected"]);
    expect(lines[header + 3]).toBe("  why:");
    expect(lines[header + 4]).toMatch(/^ {4}tmp {3}opt-in: {3}\S.*tmp\*/);
    expect(lines[header + 5]).toMatch(/^ {10}opt-out: {2}\S.*tmp\*/);
    expect(lines[header + 6]).toMatch(/^ {4}data {2}opt-in: {3}\S.*shop\/databases/);
    expect(lines[header + 7]).toMatch(/^ {10}opt-out: {2}\S.*shop\/databases/);
  });

  it("says when no policy matches", () => {
    const result = cli(["explain", "-f", "-"], POD);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("Pod empty/p\n  policy: none matches (no annotations added)");
  });

  it("says so when the one object given creates no pods", () => {
    const result = cli(["explain", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\n");
    expect(result.status).toBe(0);
    expect(result.stdout).toBe("ConfigMap default/c: not a Pod or a workload with a pod template; app-snapshots does not change it.\n");
  });

  it("says so when none of several objects creates pods", () => {
    const result = cli(["explain", "-f", "-"], "kind: ConfigMap\nmetadata: { name: c }\n---\nkind: Service\nmetadata: { name: s }\n");
    expect(result.stdout).toBe("none of the 2 objects is a Pod or a workload with a pod template; app-snapshots changes none of them.\n");
  });

  it("lists only the workloads of a whole chart's output, in the namespace given, and ends with a summary", () => {
    const result = cli(["explain", "--state", "examples/policies.yaml", "-n", "shop", "-f", "-"], CHART);
    expect(result.status).toBe(0);
    expect(result.stdout).not.toMatch(/ConfigMap|Service|not a Pod/);
    expect(result.stdout).toContain("StatefulSet shop/pg (pod template)\n  policy: shop/databases\n");
    expect(result.stdout).toContain("CronJob shop/pg-dump (pod template)\n");
    const summary = result.stdout.slice(result.stdout.indexOf("summary: 2 workloads\n")).split("\n");
    expect(summary[1]).toMatch(/^ {2}WORKLOAD +POLICY +BACKED UP: OPT-IN +BACKED UP: OPT-OUT +WARNINGS$/);
    expect(summary[2]).toMatch(/^ {2}StatefulSet shop\/pg +shop\/databases +data +data +\d+$/);
    expect(summary[3]).toMatch(/^ {2}CronJob shop\/pg-dump +\S+ +none +none +\d+$/);
    expect(summary.slice(4)).toEqual([""]);
  });

  it("prints one JSON report per workload with -o json", () => {
    const result = cli(["explain", "--state", "examples/policies.yaml", "-n", "shop", "-o", "json", "-f", "-"], CHART);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.stateProblems).toEqual([]);
    expect(report.workloads.map((w) => `${w.kind} ${w.namespace}/${w.name}`)).toEqual(["StatefulSet shop/pg", "CronJob shop/pg-dump"]);
    const pg = report.workloads[0]!;
    expect(pg.policy).toBe("shop/databases");
    expect(pg.skipped).toBeNull();
    expect(pg.annotationsSet).toContainEqual({ key: "appsnapshots.io/policy", value: "shop/databases" });
    expect(pg.volumes.map((v) => [v.name, v.claimName, v.optIn.backedUp, v.optOut.backedUp])).toEqual([
      ["dshm", undefined, false, false],
      ["data", "data-pg-0", true, true],
    ]);
    for (const v of pg.volumes) expect(v.optIn.reason.length * v.optOut.reason.length).toBeGreaterThan(0);
  });

  it("refuses an output format it does not know", () => {
    const result = cli(["explain", "-o", "yaml", "-f", "-"], POD);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("Allowed choices are text, json");
  });

  describe("--strict", () => {
    const invalidPolicy = "apiVersion: appsnapshots.io/v1alpha1\nkind: SnapshotPolicy\nmetadata: { name: bad, namespace: shop }\nspec: { volumes: { mode: Sometimes } }\n";

    it("exits 1 when a workload gets a warning, after printing the explanation", () => {
      const result = cli(["explain", "--strict", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml"]);
      expect(result.stdout).toContain("  warnings:");
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^app-snapshots explain: --strict: 0 invalid object\(s\) in --state, [1-9]\d* warning\(s\)$/m);
    });

    it("exits 1 when a policy in --state is invalid, even if no workload gets a warning", () => {
      const result = cli(["explain", "--strict", "--state", file("bad-policy.yaml", invalidPolicy), "-f", "-"], POD);
      expect(result.stderr).toMatch(/^warning: .*bad/m);
      expect(result.stderr).toContain("--strict: 1 invalid object(s) in --state, 0 warning(s)");
      expect(result.status).toBe(1);
    });

    it("exits 0 when nothing is wrong, and without --strict whatever the warnings", () => {
      expect(cli(["explain", "--strict", "--state", "examples/policies.yaml", "-f", "-"], POD).status).toBe(0);
      expect(cli(["explain", "--state", file("bad-policy-2.yaml", invalidPolicy), "-f", "examples/workloads.yaml"]).status).toBe(0);
    });
  });

  it.each([
    [["-f", "no/such/manifest.yaml"], "app-snapshots explain: cannot read no/such/manifest.yaml: no such file\n"],
    [["--state", "no/such/state.yaml", "-f", "examples/workloads.yaml"], "app-snapshots explain: cannot read no/such/state.yaml: no such file\n"],
    [["-f", "-"], "app-snapshots explain: no objects in standard input\n"],
  ])("exits 2 with one line for %j", (args, message) => {
    const result = cli(["explain", ...args], "");
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(message);
  });
});

describe("app-snapshots crds", () => {
  it("matches the chart's CRD file (run 'make crds' after changing src/policy/crd.ts)", () => {
    expect(readFileSync("chart/app-snapshots/crds/appsnapshots.io_policies.yaml", "utf8")).toBe(policyCrdsYaml());
    expect(cli(["crds"]).stdout).toBe(policyCrdsYaml());
  });
});
