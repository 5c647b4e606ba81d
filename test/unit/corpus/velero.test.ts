import { describe, expect, it } from "vitest";
import type { AdmissionReviewResponse } from "../../../src/admission/review.js";
import { ADMIN_USER, admitObject, describeObject, load, state, VELERO_CHART_USER, VELERO_USER, type KubeObject, type User } from "./load.js";

/**
 * The Velero webhook on Velero objects as Velero's docs, its Helm chart, local-volume-provider and
 * Velero's own controllers write them (test/fixtures/corpus/velero). The webhook fails closed, so a
 * wrong denial blocks Velero: every object Velero accepts must be allowed; the mistakes Velero fails
 * permanently must still be denied. Expectations come from issue 14 and Velero's behaviour.
 */
const isVelero = (o: KubeObject) => (o.apiVersion ?? "").startsWith("velero.io/");

interface Outcome {
  label: string;
  response: AdmissionReviewResponse;
}

const denied = (outcomes: Outcome[]) =>
  outcomes.filter((o) => !o.response.response.allowed).map((o) => `${o.label}\n    denied: ${o.response.response.status?.message ?? "(no message)"}`);

const warningsOf = (o: Outcome) => o.response.response.warnings ?? [];

/** Creates the documents one by one, each judged against the objects created before it. */
function applyInOrder(file: string, objects: KubeObject[], base: KubeObject[], user: User, snapshotLocationsKnown = true): Outcome[] {
  const created: KubeObject[] = [...base];
  return objects.map((object) => {
    const response = admitObject(object, state(created, snapshotLocationsKnown), user);
    if (response.response.allowed) created.push(object);
    return { label: describeObject(file, object), response };
  });
}

describe("corpus: no Velero object that Velero accepts is denied", () => {
  it("velero/docs-aws.yaml: the docs' and the AWS plugin README's locations, applied in file order", () => {
    const objects = load("velero/docs-aws.yaml");
    expect(denied(applyInOrder("velero/docs-aws.yaml", objects, [], ADMIN_USER))).toEqual([]);
  });

  it("velero/docs-aws.yaml: applied in reverse file order", () => {
    const objects = load("velero/docs-aws.yaml").reverse();
    expect(denied(applyInOrder("velero/docs-aws.yaml", objects, [], ADMIN_USER))).toEqual([]);
  });

  it("velero/docs-aws.yaml: each location created with all the others present", () => {
    const file = "velero/docs-aws.yaml";
    const objects = load(file);
    const outcomes = objects.filter(isVelero).map((object) => ({
      label: describeObject(file, object),
      response: admitObject(object, state(objects.filter((o) => o !== object), true), ADMIN_USER),
    }));
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/docs-other-providers.yaml: MinIO with a self-signed CA, Azure, GCP, DigitalOcean Spaces, a legacy Ceph RGW bucket", () => {
    const file = "velero/docs-other-providers.yaml";
    const outcomes = applyInOrder(file, load(file), load("velero/docs-aws.yaml"), ADMIN_USER);
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/docs-backups.yaml: Backups and Schedules as Velero's docs and CLI write them", () => {
    const file = "velero/docs-backups.yaml";
    const cluster = state(load("velero/docs-aws.yaml"), true);
    const outcomes = load(file).map((object) => ({ label: describeObject(file, object), response: admitObject(object, cluster, ADMIN_USER) }));
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/shared-prefix.yaml: a second read-write location on the same bucket and prefix is allowed, with a warning", () => {
    const file = "velero/shared-prefix.yaml";
    const outcomes = applyInOrder(file, load(file), [], ADMIN_USER);
    expect(denied(outcomes)).toEqual([]);
    const second = outcomes.at(-1)!;
    expect(warningsOf(second).join("\n"), second.label).toMatch(/default/);
  });

  it("velero/helm-install/release.yaml: the chart's objects in Helm's install order (Schedule before its VolumeSnapshotLocation)", () => {
    const file = "velero/helm-install/release.yaml";
    const outcomes = applyInOrder(file, load(file), [], ADMIN_USER);
    expect(denied(outcomes)).toEqual([]);
    const schedule = outcomes.find((o) => o.label.includes("Schedule"))!;
    expect(warningsOf(schedule).join("\n"), `${schedule.label}: the missing VolumeSnapshotLocation is worth a warning`).toMatch(/VolumeSnapshotLocation|volumeSnapshotLocations/);
  });

  it("velero/helm-install/first-scheduled-backup.yaml: the Backup Velero's schedule controller creates before Helm reaches the VolumeSnapshotLocation", () => {
    const release = load("velero/helm-install/release.yaml");
    const beforeVsl = release.filter((o) => o.kind !== "VolumeSnapshotLocation");
    const file = "velero/helm-install/first-scheduled-backup.yaml";
    // The chart runs Velero as the ServiceAccount velero-server.
    expect(denied(applyInOrder(file, load(file), beforeVsl, VELERO_CHART_USER))).toEqual([]);
  });

  it("velero/helm-install/release.yaml: each custom resource is allowed when it is created before every other one (GitOps order)", () => {
    const file = "velero/helm-install/release.yaml";
    const release = load(file);
    const plain = release.filter((o) => !isVelero(o));
    const outcomes = release.filter(isVelero).map((object) => ({ label: describeObject(file, object), response: admitObject(object, state(plain, true), ADMIN_USER) }));
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/helm-install/existing-secret.yaml: locations naming a credential Secret and a caCertRef Secret that are created after them", () => {
    const file = "velero/helm-install/existing-secret.yaml";
    const deployment = load("velero/helm-install/release.yaml").filter((o) => o.kind === "Deployment");
    expect(denied(applyInOrder(file, load(file), deployment, ADMIN_USER))).toEqual([]);
  });

  it("velero/helm-install/existing-secret.yaml Schedule velero-hourly (defaultVolumesToFsBackup: true) over namespaces with OptIn policies: allowed, with a warning about the mode", () => {
    const file = "velero/helm-install/existing-secret.yaml";
    const objects = load(file);
    const schedule = objects.find((o) => o.kind === "Schedule")!;
    const cluster = state([...load("velero/helm-install/release.yaml").filter((o) => o.kind === "Deployment"), ...objects.filter((o) => o !== schedule), ...load("policies/policies.yaml")], true);
    const response = admitObject(schedule, cluster, ADMIN_USER).response;
    expect({ allowed: response.allowed, mode: (response.warnings ?? []).some((w) => /defaultVolumesToFsBackup|opt-out|OptIn/i.test(w)) }, JSON.stringify(response)).toEqual({ allowed: true, mode: true });
  });

  for (const version of ["1.16.2", "1.18.2"]) {
    it(`velero/lvp/locations.yaml: local-volume-provider's hostPath, NFS and PVC locations on Velero ${version}`, () => {
      const file = "velero/lvp/locations.yaml";
      const cluster = load(`velero/lvp/velero-${version}.yaml`);
      const outcomes = load(file).map((object) => ({ label: `${describeObject(file, object)} (Velero ${version})`, response: admitObject(object, state(cluster), ADMIN_USER) }));
      expect(denied(outcomes)).toEqual([]);
      if (version === "1.18.2") {
        const silent = outcomes.filter((o) => !/kopia/i.test(warningsOf(o).join("\n"))).map((o) => o.label);
        expect(silent, "on Velero >= 1.17 a local-volume-provider location gets a warning saying kopia file-system backups fail").toEqual([]);
      }
    });
  }

  const dr = load("velero/dr-cluster/cluster.yaml");
  const synced = load("velero/dr-cluster/synced-backups.yaml");

  it("velero/dr-cluster/synced-backups.yaml: Backups Velero's backup sync creates (status already Completed), by Velero's service account", () => {
    const file = "velero/dr-cluster/synced-backups.yaml";
    const outcomes = synced.map((object) => ({ label: describeObject(file, object), response: admitObject(object, state(dr, true), VELERO_USER) }));
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/dr-cluster/synced-backups.yaml: the same Backups without userInfo (the review CLI): a Backup created with status.phase set passes on its own", () => {
    const file = "velero/dr-cluster/synced-backups.yaml";
    const outcomes = synced.map((object) => ({ label: describeObject(file, object), response: admitObject(object, state(dr, true), undefined) }));
    expect(denied(outcomes)).toEqual([]);
  });

  const updates = load("velero/dr-cluster/velero-updates.yaml");
  const pairs = Array.from({ length: updates.length / 2 }, (_, i) => ({ before: updates[2 * i]!, after: updates[2 * i + 1]! }));
  const sameSpec = (p: { before: KubeObject; after: KubeObject }) => JSON.stringify(p.before.spec) === JSON.stringify(p.after.spec);

  it("velero/dr-cluster/velero-updates.yaml: every UPDATE Velero's controllers make (defaults filled in, FailedValidation, status writes)", () => {
    const file = "velero/dr-cluster/velero-updates.yaml";
    const cluster = state([...dr, ...synced], true);
    const outcomes = pairs.map((p) => ({ label: `${describeObject(file, p.after)} (UPDATE)`, response: admitObject(p.after, cluster, VELERO_USER, "UPDATE", p.before) }));
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/dr-cluster/velero-updates.yaml: status-only UPDATEs pass without userInfo too", () => {
    const file = "velero/dr-cluster/velero-updates.yaml";
    const cluster = state([...dr, ...synced], true);
    const outcomes = pairs.filter(sameSpec).map((p) => ({ label: `${describeObject(file, p.after)} (UPDATE)`, response: admitObject(p.after, cluster, undefined, "UPDATE", p.before) }));
    expect(outcomes.length).toBeGreaterThanOrEqual(3);
    expect(denied(outcomes)).toEqual([]);
  });

  it("velero/dr-cluster/restores.yaml: Restores a person creates in the DR cluster (scheduleName resolved through synced Backups, no Schedule object)", () => {
    const file = "velero/dr-cluster/restores.yaml";
    const cluster = state([...dr, ...synced], true);
    const outcomes = load(file).map((object) => ({ label: describeObject(file, object), response: admitObject(object, cluster, ADMIN_USER) }));
    expect(denied(outcomes)).toEqual([]);
  });
});

/** Each mistake in velero/mistakes.yaml, and what its denial must talk about. */
const MISTAKES: Record<string, RegExp> = {
  "bucket-with-path": /bucket/,
  "s3url-typo": /s3URL[\s\S]*s3Url|s3Url[\s\S]*s3URL/,
  "bool-yes": /s3ForcePathStyle/,
  "kms-and-sse-c": /customerKeyEncryptionFile/,
  // Velero keeps such a location (Unavailable) and a plugin could still be added: a denial or a warning, naming the real name.
  "provider-case": /velero\.io\/aws/,
  "hour-25": /schedule/,
  "february-31": /schedule/,
  "bad-time-zone": /Atlantis|CRON_TZ|time ?zone/i,
  "to-missing-location": /backups-eu/,
  "both-label-selectors": /orLabelSelectors/,
  "namespace-in-and-out": /cache/,
  "old-and-new-filters": /includedNamespaceScopedResources|includedResources|filter/,
  "schedule-both-label-selectors": /orLabelSelectors/,
  "overwrite-policy": /existingResourcePolicy/,
  "restore-nodes": /nodes/,
  "restore-events": /events/,
  "backup-and-schedule": /scheduleName|backupName/,
  "restore-both-label-selectors": /orLabelSelectors/,
};

describe("corpus: real mistakes are still denied", () => {
  const file = "velero/mistakes.yaml";
  const mistakes = load(file);
  const cluster = state([...load("velero/docs-aws.yaml"), ...load("velero/nightly-backup.yaml")], true);

  it("every mistake in the file has an expectation here", () => {
    expect(mistakes.map((m) => m.metadata?.name).sort()).toEqual(Object.keys(MISTAKES).sort());
  });

  for (const mistake of mistakes.filter((m) => m.metadata?.name !== "provider-case")) {
    const name = mistake.metadata?.name ?? "?";
    it(`${describeObject(file, mistake)} is denied, for the right reason (${String(MISTAKES[name])})`, () => {
      const response = admitObject(mistake, cluster, ADMIN_USER).response;
      const message = response.status?.message ?? "";
      expect({ allowed: response.allowed, forTheRightReason: MISTAKES[name]!.test(message), message }, `warnings: ${JSON.stringify(response.warnings ?? [])}`).toMatchObject({
        allowed: false,
        forTheRightReason: true,
      });
    });
  }

  it("velero/mistakes.yaml BackupStorageLocation velero/provider-case: denied or warned, naming the provider meant (velero.io/aws)", () => {
    const mistake = mistakes.find((m) => m.metadata?.name === "provider-case")!;
    const response = admitObject(mistake, cluster, ADMIN_USER).response;
    const said = [response.status?.message ?? "", ...(response.warnings ?? [])].join("\n");
    expect(said, JSON.stringify(response)).toMatch(MISTAKES["provider-case"]!);
  });

  it("velero/mistakes.yaml: a person's UPDATE that introduces the s3URL typo into a working location is denied", () => {
    const minio = load("velero/docs-aws.yaml").find((o) => o.metadata?.name === "minio")!;
    const typo = { ...minio, spec: { ...minio.spec, config: { region: "minio", s3ForcePathStyle: "true", s3URL: "http://minio.velero.svc:9000" } } };
    const response = admitObject(typo, cluster, ADMIN_USER, "UPDATE", minio).response;
    const message = response.status?.message ?? "";
    expect({ allowed: response.allowed, namesTheKey: message.includes("s3URL"), message }).toMatchObject({ allowed: false, namesTheKey: true });
  });

  it("velero/mistakes.yaml: a person's Backup and Restore created with status.phase New are still judged (Velero treats phase \"\" and New as new work)", () => {
    // backup_queue_controller.go (Reconcile: `case "", velerov1api.BackupPhaseNew:`), restore_controller.go (`case "", api.RestorePhaseNew:`).
    const outcomes = ["to-missing-location", "restore-nodes"].map((name) => {
      const mistake = mistakes.find((m) => m.metadata?.name === name)!;
      return { label: `${describeObject(file, mistake)} with status.phase New`, response: admitObject({ ...mistake, status: { phase: "New" } }, cluster, ADMIN_USER) };
    });
    expect(outcomes.filter((o) => o.response.response.allowed).map((o) => o.label)).toEqual([]);
  });

  it("velero/mistakes.yaml Backup to-missing-location is allowed once it is a synced Backup (status Completed, by Velero)", () => {
    const backup = mistakes.find((m) => m.metadata?.name === "to-missing-location")!;
    const syncedCopy = { ...backup, status: { phase: "Completed" } };
    const response = admitObject(syncedCopy, cluster, VELERO_USER).response;
    expect(response.allowed, response.status?.message).toBe(true);
  });
});
