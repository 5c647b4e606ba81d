import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildClusterState } from "../../../src/admission/state.js";
import { podOf, workloadReport, type Manifest, type WorkloadReport } from "../../../src/commands/explainReport.js";
import { formatTable } from "../../../src/commands/explainTable.js";
import { renderSummary, renderWorkload } from "../../../src/commands/explainText.js";
import { policyYaml, stateFrom } from "../pods/support.js";

const state = stateFrom(policyYaml("all", 'volumes: { include: ["*"] }'));
const empty = buildClusterState({ objects: [] });

const deployment = (namespace?: string): Manifest => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", ...(namespace ? { namespace } : {}) },
  spec: { template: { spec: { containers: [{ name: "web", image: "nginx", volumeMounts: [{ name: "uploads", mountPath: "/uploads" }] }], volumes: [{ name: "uploads", persistentVolumeClaim: { claimName: "web-uploads" } }] } } },
});

describe("workloadReport", () => {
  it("uses the manifest's namespace, and the default one for manifests that name none (helm template output)", () => {
    expect(workloadReport(deployment(), state, "shop")).toMatchObject({ namespace: "shop", policy: "shop/all" });
    expect(workloadReport(deployment("other"), state, "shop")).toMatchObject({ namespace: "other", policy: null });
  });

  it("reports a verdict for each volume of the pod, and the annotations the policy sets", () => {
    const report = workloadReport(deployment(), state, "shop")!;
    expect(report.volumes.map((v) => [v.name, v.claimName, v.optIn.backedUp, v.optOut.backedUp])).toEqual([["uploads", "web-uploads", true, true]]);
    expect(report.annotationsSet).toContainEqual({ key: "backup.velero.io/backup-volumes", value: "uploads" });
    expect(report.annotationsRemoved).toEqual([]);
  });

  it("creates no report for kinds without pods", () => {
    expect(workloadReport({ kind: "ConfigMap", metadata: { name: "c" } }, state, "shop")).toBeUndefined();
    expect(workloadReport({ kind: "Deployment", metadata: { name: "no-template" }, spec: {} }, state, "shop")).toBeUndefined();
  });

  it("gives a StatefulSet's pod a claim volume per claim template, as the controller names the first pod's claim", () => {
    const sts: Manifest = { kind: "StatefulSet", metadata: { name: "db" }, spec: { template: { spec: { containers: [] } }, volumeClaimTemplates: [{ metadata: { name: "data" } }] } };
    expect(podOf(sts)?.spec?.volumes).toEqual([{ name: "data", persistentVolumeClaim: { claimName: "data-db-0" } }]);
  });

  it("names init containers the admission adds or changes (restore-wait moved first on a restored pod)", () => {
    const restored: Manifest = {
      kind: "Pod",
      metadata: { name: "p", namespace: "shop", labels: { "velero.io/restore-name": "r1" } } as Manifest["metadata"],
      spec: { containers: [{ name: "app" }], initContainers: [{ name: "migrate" }, { name: "restore-wait", image: "velero/velero" }] },
    };
    const report = workloadReport(restored, empty, "default")!;
    expect(report.initContainers.before).toEqual(["migrate", "restore-wait"]);
    expect(report.initContainers.after.slice(0, 2)).toEqual(["restore-wait", "migrate"]);
  });
});

const report = (overrides: Partial<WorkloadReport>): WorkloadReport => ({
  kind: "Deployment",
  namespace: "shop",
  name: "web",
  skipped: null,
  policy: "shop/all",
  annotationsSet: [],
  annotationsRemoved: [],
  annotationsKept: {},
  initContainers: { before: [], after: [], changed: [] },
  warnings: [],
  volumes: [],
  ...overrides,
});

const volume = (name: string, optIn: boolean, optOut: boolean) => ({
  name,
  source: "emptyDir",
  optIn: { backedUp: optIn, reason: `${name} in opt-in` },
  optOut: { backedUp: optOut, reason: `${name} in opt-out` },
});

describe("renderWorkload", () => {
  it("prints the verdicts side by side and the reasons below them", () => {
    const text = renderWorkload(report({ volumes: [{ ...volume("data", true, true), source: "persistentVolumeClaim", claimName: "data-0" }, volume("scratch", false, true)] }));
    expect(text.split("\n").slice(3)).toEqual([
      "  volumes (Velero file-system backup; opt-in is Velero's default, opt-out is defaultVolumesToFsBackup: true):",
      "    VOLUME   SOURCE        OPT-IN    OPT-OUT",
      "    data     claim data-0  selected  selected",
      "    scratch  emptyDir      skipped   selected",
      "  why:",
      "    data     opt-in:   data in opt-in",
      "             opt-out:  data in opt-out",
      "    scratch  opt-in:   scratch in opt-in",
      "             opt-out:  scratch in opt-out",
      "",
    ]);
  });

  it("gives one reason line when both modes have the same reason, and warnings in full", () => {
    const same = { ...volume("dumps", false, false), optOut: { backedUp: false, reason: "dumps in opt-in" } };
    const long = `a warning longer than the apiserver's header limit: ${"x".repeat(300)}`;
    const text = renderWorkload(report({ volumes: [same], warnings: [long] }));
    expect(text).toContain("  why:\n    dumps  both:  dumps in opt-in\n");
    expect(text).toContain(`  warnings:\n    - ${long}\n`);
  });

  it("says why a pod is left alone, and what was removed or changed", () => {
    expect(renderWorkload(report({ skipped: "mirror pod", kind: "Pod" }))).toBe("Pod shop/web\n  skipped: mirror pod; app-snapshots leaves it unchanged.\n");
    const text = renderWorkload(report({ annotationsRemoved: ["post.hook.backup.velero.io/command"], initContainers: { before: ["a"], after: ["a", "hook"], changed: ["hook"] } }));
    expect(text).toContain("  annotations removed: post.hook.backup.velero.io/command\n");
    expect(text).toContain("  init containers: a -> a, hook (added or changed: hook)\n");
  });
});

describe("renderSummary", () => {
  it("has a row per workload: policy or why skipped, volumes backed up in each mode, warning count", () => {
    const lines = renderSummary([
      report({ volumes: [volume("data", true, true), volume("cache", false, true)], warnings: ["w1", "w2"] }),
      report({ kind: "CronJob", name: "dump", policy: null }),
      report({ kind: "Pod", name: "static", skipped: "mirror pod" }),
    ]).split("\n");
    expect(lines).toEqual([
      "summary: 3 workloads",
      "  WORKLOAD             POLICY                BACKED UP: OPT-IN  BACKED UP: OPT-OUT  WARNINGS",
      "  Deployment shop/web  shop/all              data               data, cache         2",
      "  CronJob shop/dump    none                  none               none                0",
      "  Pod shop/static      skipped (mirror pod)  none               none                0",
      "",
    ]);
  });
});

describe("formatTable", () => {
  it("starts every column at the same offset on every line", () => {
    const cell = fc.string({ maxLength: 12 }).filter((s) => !/[\s]/.test(s) && s.length > 0);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }).chain((width) => fc.array(fc.array(cell, { minLength: width, maxLength: width }), { minLength: 1, maxLength: 6 })), (rows) => {
        const lines = formatTable(rows, "  ");
        const offsets = (line: string) => [...line.matchAll(/(?<=^ {2}|\s)\S/g)].map((m) => m.index);
        for (const line of lines) expect(offsets(line)).toEqual(offsets(lines[0]!));
        lines.forEach((line, i) => expect(line.trim().split(/\s+/)).toEqual(rows[i]));
      }),
    );
  });
});
