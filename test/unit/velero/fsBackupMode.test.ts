import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { buildClusterState } from "../../../src/admission/state.js";
import { backupTakesEveryVolume, fsBackupModeFindings } from "../../../src/velero/fsBackupMode.js";
import { defaultVolumesToFsBackupFlag } from "../../../src/velero/serverDeployment.js";
import { awsSpec, bsl, NS, veleroReview } from "./support.js";

const policy = (namespace: string, name: string, mode: "OptIn" | "OptOut" | "None") => ({
  apiVersion: "appsnapshots.io/v1alpha1",
  kind: "SnapshotPolicy",
  metadata: { name, namespace },
  spec: { volumes: { mode } },
});
const clusterPolicy = (name: string, mode: "OptIn" | "OptOut", matchLabels: Record<string, string>) => ({
  apiVersion: "appsnapshots.io/v1alpha1",
  kind: "ClusterSnapshotPolicy",
  metadata: { name },
  spec: { namespaceSelector: { matchLabels }, volumes: { mode } },
});
const namespace = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
/** The velero Deployment as `velero install --default-volumes-to-fs-backup` writes its args. */
const velero = (args: string[]) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "velero", namespace: NS, labels: { component: "velero" } },
  spec: { template: { spec: { containers: [{ name: "velero", image: "velero/velero:v1.18.2", command: ["/velero"], args: ["server", "--uploader-type=kopia", ...args] }] } } },
});

const cluster = [
  bsl("default", awsSpec({ default: true })),
  namespace("shop"),
  namespace("blog", { tier: "web" }),
  namespace("cache"),
  policy("shop", "db", "OptIn"),
  clusterPolicy("web-apps", "OptOut", { tier: "web" }),
];
const schedule = (template: object) => ({ apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly", namespace: NS }, spec: { schedule: "0 2 * * *", template } });

function warnings(template: object, objects: unknown[] = []) {
  const out = admit(veleroReview("Schedule", "CREATE", schedule(template)), buildClusterState({ objects: [...cluster, ...objects] }), "velero").response;
  // Every warning must reach the client whole (formatWarnings cuts longer ones with "...").
  for (const warning of out.warnings ?? []) expect(warning.endsWith("..."), warning).toBe(false);
  expect(out.allowed).toBe(true);
  return out.warnings ?? [];
}

describe("a Backup's file-system-backup mode against the policies of the namespaces it covers", () => {
  it("warns when an opt-out Schedule covers namespaces with OptIn policies, saying which pods get every volume", () => {
    expect(warnings({ defaultVolumesToFsBackup: true })).toEqual([
      "app-snapshots: spec.template.defaultVolumesToFsBackup: backs up every volume (opt-out), but OptIn policies cover its namespaces: shop/db",
      "app-snapshots: spec.template.defaultVolumesToFsBackup: pods the webhook annotated keep their policy's selection; others (created before the policy, or unmatched) get ALL volumes backed up",
    ]);
    expect(warnings({ defaultVolumesToFsBackup: true, includedNamespaces: ["cache", "blog"] })).toEqual([]);
    expect(warnings({ defaultVolumesToFsBackup: true, excludedNamespaces: ["sh*"] })).toEqual([]);
    // Velero leaves out namespaces labelled velero.io/exclude-from-backup=true.
    expect(warnings({ defaultVolumesToFsBackup: true }, [namespace("shop", { "velero.io/exclude-from-backup": "true" })])).toEqual([]);
  });

  it("warns the other way round: an opt-in Schedule over OptOut policies (cluster policies by namespace labels)", () => {
    expect(warnings({ includedNamespaces: ["b*"] })).toEqual([
      "app-snapshots: spec.template: backs up only listed volumes (opt-in), but OptOut policies cover its namespaces: cluster/web-apps",
      "app-snapshots: spec.template: pods the webhook annotated keep their policy's selection; others (created before the policy, or unmatched) get NO file-system backup",
    ]);
  });

  it("reads the Velero server's --default-volumes-to-fs-backup when the Backup leaves the field unset", () => {
    expect(warnings({ includedNamespaces: ["shop"] }, [velero(["--default-volumes-to-fs-backup"])])[0]).toBe(
      "app-snapshots: spec.template: backs up every volume (opt-out), but OptIn policies cover its namespaces: shop/db",
    );
    expect(warnings({ includedNamespaces: ["shop"], defaultVolumesToFsBackup: false }, [velero(["--default-volumes-to-fs-backup=true"])])).toEqual([]);
    expect(warnings({ includedNamespaces: ["shop"] }, [velero(["--default-volumes-to-fs-backup=F"])])).toEqual([]);
  });

  it("follows Velero's order: the field, a true defaultVolumesToRestic, the server flag, false", () => {
    expect(backupTakesEveryVolume({ defaultVolumesToFsBackup: false }, true)).toBe(false);
    expect(backupTakesEveryVolume({ defaultVolumesToRestic: true, defaultVolumesToFsBackup: false }, false)).toBe(true);
    expect(backupTakesEveryVolume({}, true)).toBe(true);
    expect(backupTakesEveryVolume({}, undefined)).toBe(false);
    expect(defaultVolumesToFsBackupFlag(["server", "--default-volumes-to-fs-backup"])).toBe(true);
    expect(defaultVolumesToFsBackupFlag(["server", "--default-volumes-to-fs-backup=0"])).toBe(false);
    expect(defaultVolumesToFsBackupFlag(["server", "--default-volumes-to-fs-backup=maybe"])).toBeUndefined();
    expect(defaultVolumesToFsBackupFlag(["server"])).toBeUndefined();
  });

  it("is a pure function of the spec and the state, and only ever warns", () => {
    const state = buildClusterState({ objects: cluster });
    const findings = fsBackupModeFindings("spec", { defaultVolumesToFsBackup: true }, NS, state);
    expect(findings.map((f) => f.severity)).toEqual(["warn", "warn"]);
    expect(fsBackupModeFindings("spec", { defaultVolumesToFsBackup: true }, NS, state)).toEqual(findings);
  });
});
