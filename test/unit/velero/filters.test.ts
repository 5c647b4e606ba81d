import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { awsSpec, bsl, NS, veleroReview, veleroState } from "./support.js";

const locations = [bsl("default", awsSpec({ default: true }))];
const backup = (spec: object) => ({ apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "b1", namespace: NS }, spec });
const schedule = (template: object) => ({ apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly", namespace: NS }, spec: { schedule: "0 2 * * *", template } });
const completed = { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "nightly-1", namespace: NS, labels: { "velero.io/schedule-name": "nightly" } }, spec: {}, status: { phase: "Completed" } };
const restore = (spec: object) => ({ apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "r1", namespace: NS }, spec: { backupName: "nightly-1", ...spec } });

function verdict(kind: "Backup" | "Schedule" | "Restore", object: object) {
  const out = admit(veleroReview(kind, "CREATE", object), veleroState([...locations, completed]), "velero").response;
  // Every warning must reach the client whole (formatWarnings cuts longer ones with "...").
  for (const warning of out.warnings ?? []) expect(warning.endsWith("..."), warning).toBe(false);
  return { allowed: out.allowed, message: out.status?.message ?? "", warnings: out.warnings ?? [] };
}

describe("Backup and Schedule filters, as Velero's prepareBackupRequest checks them", () => {
  it.each([
    [{ labelSelector: { matchLabels: { app: "db" } }, orLabelSelectors: [{ matchLabels: { app: "web" } }] }, "spec.orLabelSelectors: and labelSelector are both set; Velero accepts only one of them"],
    [{ includedNamespaces: ["shop", "blog"], excludedNamespaces: ["blog"] }, '"blog" is both included and excluded; Velero fails it validating the lists'],
    [{ includedNamespaces: ["*", "shop"] }, "spec.excludedNamespaces: includes list must either contain '*' only, or a non-empty list of items; Velero fails it validating the lists"],
    [{ excludedNamespaces: ["*"] }, "spec.excludedNamespaces: excludes list cannot contain '*'; Velero fails it validating the lists"],
    [
      { includeClusterResources: true, includedNamespaceScopedResources: ["deployments"] },
      "spec.includedResources: mixes the old resource filters (includedResources, excludedResources, includeClusterResources) with the new ones (included/excluded ClusterScoped/NamespaceScoped Resources); Velero refuses both together",
    ],
    [{ includedResources: ["pods"], excludedClusterScopedResources: ["storageclasses"] }, "spec.includedResources: mixes the old resource filters"],
    [{ includedResources: ["pods"], excludedResources: ["pods"] }, 'spec.excludedResources: "pods" is both included and excluded'],
    [{ includedClusterScopedResources: ["persistentvolumes"], excludedClusterScopedResources: ["*"] }, "spec.excludedClusterScopedResources: when exclude is '*', include cannot have value"],
  ])("denies %j", (spec, finding) => {
    const result = verdict("Backup", backup(spec));
    expect(result.allowed).toBe(false);
    expect(result.message).toContain(finding);
    // The same template in a Schedule: Velero refuses each of its backups.
    expect(verdict("Schedule", schedule(spec)).message).toContain(finding.replace(/^spec\./, "spec.template."));
  });

  it.each([
    { orLabelSelectors: [{ matchLabels: { app: "web" } }], labelSelector: null },
    { includedNamespaces: ["shop"], excludedNamespaces: ["blog"] },
    { includeClusterResources: false, includedResources: ["*"], excludedResources: ["secrets"] },
    { includedNamespaceScopedResources: ["*"], excludedClusterScopedResources: ["*"] },
  ])("accepts %j", (spec) => {
    expect(verdict("Backup", backup(spec))).toEqual({ allowed: true, message: "", warnings: [] });
  });
});

describe("Restore filters and options, as Velero's validateAndComplete checks them", () => {
  it.each([
    [{ labelSelector: { matchLabels: { app: "db" } }, orLabelSelectors: [{ matchLabels: { app: "web" } }] }, "spec.orLabelSelectors: and labelSelector are both set; Velero accepts only one of them"],
    [{ includedNamespaces: ["shop"], excludedNamespaces: ["shop"] }, 'spec.excludedNamespaces: "shop" is both included and excluded; Velero fails it validating the lists'],
    [{ existingResourcePolicy: "Update" }, 'spec.existingResourcePolicy: must be none or update (case-sensitive), not "Update"'],
    [{ includedResources: ["deployments", "nodes"] }, "spec.includedResources[1]: Velero never restores nodes and fails a Restore that includes them"],
    [{ includedResources: ["events.events.k8s.io"] }, "spec.includedResources[0]: Velero never restores events.events.k8s.io and fails a Restore that includes them"],
  ])("denies %j", (spec, finding) => {
    const result = verdict("Restore", restore(spec));
    expect(result.allowed).toBe(false);
    expect(result.message).toBe(`app-snapshots: Restore ${NS}/r1 is invalid: ${finding}`);
  });

  it("warns about another spelling of a resource Velero never restores (it is excluded from every Restore)", () => {
    expect(verdict("Restore", restore({ includedResources: ["Node", "event", "backups", "pods"] })).warnings).toEqual([
      'app-snapshots: spec.includedResources[0]: "Node" is nodes, which Velero never restores: it is excluded from every Restore',
      'app-snapshots: spec.includedResources[1]: "event" is events, which Velero never restores: it is excluded from every Restore',
      'app-snapshots: spec.includedResources[2]: "backups" is backups.velero.io, which Velero never restores: it is excluded from every Restore',
    ]);
  });

  it.each([{ existingResourcePolicy: "update" }, { existingResourcePolicy: "none" }, { existingResourcePolicy: "" }, { includedNamespaces: ["*"], excludedNamespaces: ["kube-system"] }])("accepts %j", (spec) => {
    expect(verdict("Restore", restore(spec))).toEqual({ allowed: true, message: "", warnings: [] });
  });

  it("restores from a schedule's newest Completed Backup: the Schedule object itself is not needed", () => {
    expect(verdict("Restore", { ...restore({}), spec: { scheduleName: "nightly" } })).toEqual({ allowed: true, message: "", warnings: [] });
    const inProgress = { ...completed, metadata: { ...completed.metadata, name: "weekly-1", labels: { "velero.io/schedule-name": "weekly" } }, status: { phase: "InProgress" } };
    const out = admit(veleroReview("Restore", "CREATE", { ...restore({}), spec: { scheduleName: "weekly" } }), veleroState([...locations, inProgress]), "velero").response;
    expect(out.status?.message).toBe(
      `app-snapshots: Restore ${NS}/r1 is invalid: spec.scheduleName: no Completed Backup in ${NS} is labelled velero.io/schedule-name=weekly (1 not completed); Velero fails the Restore at once (is the location synced? velero backup get)`,
    );
  });
});
