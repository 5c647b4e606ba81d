import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { buildClusterState } from "../../../src/admission/state.js";
import { cronProblem } from "../../../src/velero/cron.js";
import { awsSpec, bsl, NS, veleroDeployment, veleroReview, veleroState } from "./support.js";

const locations = [bsl("default", awsSpec({ default: true })), bsl("archive", awsSpec({ accessMode: "ReadOnly", objectStorage: { bucket: "archive" } }))];
const backup = (spec: object, name = "b1", status?: object) => ({ apiVersion: "velero.io/v1", kind: "Backup", metadata: { name, namespace: NS }, spec, ...(status ? { status } : {}) });
const schedule = (spec: object) => ({ apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly", namespace: NS }, spec });
const restore = (spec: object) => ({ apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "r1", namespace: NS }, spec });

function verdict(kind: "Backup" | "Schedule" | "Restore", object: object, objects: unknown[] = [], snapshotLocationsKnown = false) {
  const out = admit(veleroReview(kind, "CREATE", object), veleroState([...locations, ...objects], snapshotLocationsKnown), "velero").response;
  // Every warning must reach the client whole (formatWarnings cuts longer ones with "...").
  for (const warning of out.warnings ?? []) expect(warning.endsWith("..."), warning).toBe(false);
  return { allowed: out.allowed, message: out.status?.message ?? "", warnings: out.warnings ?? [] };
}

describe("Backup rules", () => {
  it("accepts a backup to an existing read-write location, or to the default", () => {
    expect(verdict("Backup", backup({ storageLocation: "default", ttl: "720h" }))).toEqual({ allowed: true, message: "", warnings: [] });
    expect(verdict("Backup", backup({})).allowed).toBe(true);
  });

  it.each([
    [{ storageLocation: "nope" }, "spec.storageLocation: BackupStorageLocation velero/nope does not exist"],
    [{ storageLocation: "archive" }, "spec.storageLocation: archive is ReadOnly; Velero fails backups to it (FailedValidation)"],
    [{ ttl: "30 days" }, 'spec.ttl: "30 days" is not a duration (e.g. 30s, 10m, 720h)'],
    [{ hooks: { resources: [{ pre: [{ exec: { command: ["sync"] } }] }] } }, "spec.hooks.resources[0].name: is required"],
    [{ hooks: { resources: [{ name: "h", pre: [{ exec: { command: [] } }] }] } }, "spec.hooks.resources[0].pre[0].exec.command: must have at least one element"],
    [{ hooks: { resources: [{ name: "h", post: [{ exec: { command: ["x"], onError: "fail" } }] }] } }, 'spec.hooks.resources[0].post[0].exec.onError: must be Continue or Fail (case-sensitive), not "fail"'],
    [{ hooks: { resources: [{ name: "h", pre: [{ exec: { command: ["x"], timeout: "5 min" } }] }] } }, 'spec.hooks.resources[0].pre[0].exec.timeout: "5 min" is not a duration (e.g. 30s, 10m, 720h)'],
  ])("denies %j", (spec, finding) => {
    const result = verdict("Backup", backup(spec));
    expect(result.allowed).toBe(false);
    expect(result.message).toBe(`app-snapshots: Backup ${NS}/b1 is invalid: ${finding}`);
  });

  it("names a denied object whose metadata name is not a string by the request's name", () => {
    const hostile = { ...backup({ storageLocation: "nope" }), metadata: { name: [[{ a: 1 }]], namespace: NS } };
    const review = veleroReview("Backup", "CREATE", hostile);
    const out = admit({ ...review, request: { ...review.request, name: "from-request" } }, veleroState(locations), "velero").response;
    expect(out.allowed).toBe(false);
    expect(out.status?.message).toContain(`Backup ${NS}/from-request is invalid`);
  });

  it("denies a backup without storageLocation when there is no default location", () => {
    const out = admit(veleroReview("Backup", "CREATE", backup({})), veleroState([locations[1]]), "velero").response;
    expect(out.status?.message).toBe(`app-snapshots: Backup ${NS}/b1 is invalid: spec.storageLocation: is not set and velero has no default BackupStorageLocation; set storageLocation or mark a location default: true`);
  });

  it("sends a backup without storageLocation where Velero does when no location is default: to the one its server names (backup_controller.go)", () => {
    const notDefault = bsl("default", awsSpec());
    const state = (objects: unknown[]) => admit(veleroReview("Backup", "CREATE", backup({})), veleroState(objects), "velero").response;
    // `velero server`'s --default-backup-storage-location is "default" unless set.
    expect(state([notDefault]).allowed).toBe(true);
    const withFlag = (flag: string[]) => ({ ...veleroDeployment("v1.18.3"), spec: { template: { spec: { containers: [{ name: "velero", image: "velero/velero:v1.18.3", args: ["server", ...flag] }] } } } });
    expect(state([bsl("primary", awsSpec()), withFlag(["--default-backup-storage-location=primary"])]).allowed).toBe(true);
    expect(state([bsl("primary", awsSpec()), withFlag(["--default-backup-storage-location", "primary"])]).allowed).toBe(true);
    expect(state([notDefault, withFlag(["--default-backup-storage-location=primary"])]).status?.message).toContain("velero has no default BackupStorageLocation");
    expect(state([bsl("default", awsSpec({ accessMode: "ReadOnly" }))]).status?.message).toBe(
      `app-snapshots: Backup ${NS}/b1 is invalid: spec.storageLocation: is not set and default, the Velero server's default location, is ReadOnly`,
    );
  });

  it("only warns about locations and backups the webhook has not listed yet (Velero's CRDs installed after it started)", () => {
    const unlisted = buildClusterState({ objects: [], unlisted: ["BackupStorageLocation", "Backup"] });
    for (const [kind, object] of [
      ["Backup", backup({})],
      ["Backup", backup({ storageLocation: "nope" })],
      ["Restore", restore({ backupName: "b0" })],
      ["Restore", restore({ scheduleName: "nightly" })],
    ] as const) {
      const out = admit(veleroReview(kind, "CREATE", object), unlisted, "velero").response;
      expect({ kind, allowed: out.allowed }).toEqual({ kind, allowed: true });
      expect(out.warnings?.join("\n")).toMatch(/not checked: the webhook has not listed (BackupStorageLocations|Backups) yet/);
    }
  });

  it("checks volumeSnapshotLocations when they are known (a missing one is a warning: it may come later), and says so when they are not", () => {
    const vsl = { apiVersion: "velero.io/v1", kind: "VolumeSnapshotLocation", metadata: { name: "aws-ebs", namespace: NS } };
    expect(verdict("Backup", backup({ volumeSnapshotLocations: ["aws-ebs"] }), [vsl])).toEqual({ allowed: true, message: "", warnings: [] });
    expect(verdict("Backup", backup({ volumeSnapshotLocations: ["gcp-pd"] }), [], true)).toEqual({
      allowed: true,
      message: "",
      warnings: ["app-snapshots: spec.volumeSnapshotLocations[0]: VolumeSnapshotLocation velero/gcp-pd does not exist yet; Velero fails a backup naming a missing one"],
    });
    expect(verdict("Backup", backup({ volumeSnapshotLocations: ["gcp-pd"] })).warnings).toEqual([
      "app-snapshots: spec.volumeSnapshotLocations[0]: gcp-pd not checked: app-snapshots does not know this cluster's VolumeSnapshotLocations",
    ]);
  });

  it("warns about defaultVolumesToRestic, naming the running Velero", () => {
    expect(verdict("Backup", backup({ defaultVolumesToRestic: true }), [veleroDeployment("v1.18.2")]).warnings).toEqual([
      "app-snapshots: spec.defaultVolumesToRestic: is deprecated (this cluster runs Velero v1.18.2; restic is gone since 1.17); use defaultVolumesToFsBackup, which Velero >= 1.17 backs with kopia",
    ]);
  });
});

describe("Schedule rules", () => {
  it("accepts cron and descriptor schedules and checks the template like a Backup", () => {
    expect(verdict("Schedule", schedule({ schedule: "0 2 * * *", template: { storageLocation: "default" } })).allowed).toBe(true);
    expect(verdict("Schedule", schedule({ schedule: "@every 6h", template: {} })).allowed).toBe(true);
    expect(verdict("Schedule", schedule({ schedule: "0 2 * * *", template: { ttl: "a week" } })).message).toBe(
      `app-snapshots: Schedule ${NS}/nightly is invalid: spec.template.ttl: "a week" is not a duration (e.g. 30s, 10m, 720h)`,
    );
  });
  it("only warns about the template's location: Velero checks it when the Schedule fires, not when it is created", () => {
    expect(verdict("Schedule", schedule({ schedule: "0 2 * * *", template: { storageLocation: "archive" } }))).toEqual({
      allowed: true,
      message: "",
      warnings: ["app-snapshots: spec.template.storageLocation: archive is ReadOnly; the Schedule's backups fail (FailedValidation) while it is"],
    });
    expect(verdict("Schedule", schedule({ schedule: "0 2 * * *", template: { storageLocation: "offsite" } })).warnings).toEqual([
      "app-snapshots: spec.template.storageLocation: BackupStorageLocation velero/offsite does not exist yet; the Schedule's backups fail until it does",
    ]);
  });
  it("accepts a Schedule naming a VolumeSnapshotLocation Helm creates after it (custom resources go in alphabetical kind order)", () => {
    // As a chart would ship them: the Schedule is applied first.
    const nightly = schedule({ schedule: "0 3 * * *", template: { storageLocation: "default", volumeSnapshotLocations: ["aws-ebs"], ttl: "168h0m0s" } });
    expect(verdict("Schedule", nightly, [], true)).toEqual({
      allowed: true,
      message: "",
      warnings: ["app-snapshots: spec.template.volumeSnapshotLocations[0]: VolumeSnapshotLocation velero/aws-ebs does not exist yet; Velero fails a backup naming a missing one"],
    });
  });
  it("denies an invalid cron expression with the reason", () => {
    expect(verdict("Schedule", schedule({ schedule: "0 25 * * *", template: {} })).message).toBe(
      `app-snapshots: Schedule ${NS}/nightly is invalid: spec.schedule: "0 25 * * *" is not a valid schedule: hour 25 is outside 0-23`,
    );
  });
});

describe("Restore rules", () => {
  const completed = backup({ storageLocation: "default" }, "nightly-1", { phase: "Completed" });
  it("accepts a restore of a completed backup", () => {
    expect(verdict("Restore", restore({ backupName: "nightly-1" }), [completed])).toEqual({ allowed: true, message: "", warnings: [] });
  });
  it.each([
    [{}, "spec.backupName: or spec.scheduleName is required"],
    [{ backupName: "gone" }, "spec.backupName: Backup velero/gone does not exist (is the location synced? velero backup get)"],
    [{ scheduleName: "weekly" }, "spec.scheduleName: no Completed Backup in velero is labelled velero.io/schedule-name=weekly; Velero fails the Restore at once (is the location synced? velero backup get)"],
    [{ backupName: "nightly-1", scheduleName: "x" }, "spec.scheduleName: and backupName are both set; Velero needs exactly one"],
    [
      { backupName: "nightly-1", hooks: { resources: [{ name: "h", postHooks: [{ init: { initContainers: [{ name: "prep", image: "busybox" }] } }] }] } },
      "spec.hooks.resources[0].postHooks[0].init.initContainers[0]: needs command; Velero ends the restore FailedValidation otherwise",
    ],
    [
      { backupName: "nightly-1", hooks: { resources: [{ name: "h", postHooks: [{ exec: { command: ["x"], execTimeout: "1 hour" } }] }] } },
      'spec.hooks.resources[0].postHooks[0].exec.execTimeout: "1 hour" is not a duration (e.g. 30s, 10m, 720h)',
    ],
  ])("denies %j", (spec, finding) => {
    expect(verdict("Restore", restore(spec), [completed]).message).toBe(`app-snapshots: Restore ${NS}/r1 is invalid: ${finding}`);
  });
  it("warns when the backup is not finished", () => {
    expect(verdict("Restore", restore({ backupName: "b1" }), [backup({}, "b1", { phase: "InProgress" })]).warnings).toEqual([
      "app-snapshots: spec.backupName: Backup b1 is InProgress, not Completed or PartiallyFailed; the restore may fail or be incomplete",
    ]);
  });
});

describe("cron (robfig/cron standard parser)", () => {
  it.each(["0 2 * * *", "*/15 * * * *", "0 0 1,15 * *", "30 4 * JAN-MAR MON-FRI", "0 0 * * ?", "CRON_TZ=Europe/Berlin 0 3 * * *", "@daily", "@every 1h30m"])("accepts %s", (e) => {
    expect(cronProblem(e)).toBeUndefined();
  });
  it.each([
    ["", "the schedule is empty"],
    ["* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"],
    ["60 * * * *", "minute 60 is outside 0-59"],
    ["0 0 0 * *", "day of month 0 is outside 1-31"],
    ["0 0 * 13 *", "month 13 is outside 1-12"],
    ["0 0 * * FUNDAY", 'day of week "FUNDAY" is not a number or name'],
    ["*/0 * * * *", 'minute step "0" must be a positive number'],
    ["5-1 * * * *", 'minute range "5-1" runs backwards'],
    ["@sometimes", '"@sometimes" is not a descriptor Velero knows (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>)'],
    ["@every soon", '"@every soon" needs a positive Go duration after @every (e.g. @every 6h)'],
  ])("rejects %j: %s", (e, reason) => {
    expect(cronProblem(e)).toBe(reason);
  });
});

describe("robustness", () => {
  it("never throws on arbitrary objects of any Velero kind and operation, and always answers", () => {
    const kinds = ["BackupStorageLocation", "Backup", "Schedule", "Restore"] as const;
    const fields = ["provider", "objectStorage", "config", "credential", "default", "accessMode", "backupSyncPeriod", "storageLocation", "volumeSnapshotLocations", "hooks", "schedule", "template", "backupName", "scheduleName", "ttl"];
    const nested = fc.dictionary(fc.constantFrom("bucket", "prefix", "caCert", "caCertRef", "s3Url", "region", "resources", "name", "key", "pre", "postHooks"), fc.anything(), { maxKeys: 4 });
    const specArb = fc.oneof(fc.anything(), fc.dictionary(fc.constantFrom(...fields), fc.oneof(fc.anything(), nested, fc.array(nested, { maxLength: 2 })), { maxKeys: 6 }));
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.constantFrom<"CREATE" | "UPDATE" | "DELETE">("CREATE", "UPDATE", "DELETE"), specArb, specArb, fc.anything(), (kind, operation, spec, oldSpec, meta) => {
          const object = { apiVersion: "velero.io/v1", kind, metadata: { name: "x", namespace: NS, annotations: meta }, spec };
          const old = { ...object, spec: oldSpec };
          const out = admit(veleroReview(kind, operation, object, old), veleroState(locations), "velero");
          expect(typeof out.response.allowed).toBe("boolean");
          if (!out.response.allowed) expect(out.response.status?.message).toMatch(/^app-snapshots: /);
        },
      ),
      { numRuns: 600 },
    );
  });
});
