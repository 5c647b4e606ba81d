import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { buildClusterState } from "../../../src/admission/state.js";
import { isVelerosOwn } from "../../../src/admission/veleroAdmission.js";
import { DEFAULT_VELERO_USERNAMES, serviceAccountUsernameProblem } from "../../../src/velero/serviceAccounts.js";
import { awsSpec, bsl, NS, veleroReview, veleroState } from "./support.js";

/** A Backup as Velero's backup sync creates it in a DR cluster: status copied from the location. */
const synced = {
  apiVersion: "velero.io/v1",
  kind: "Backup",
  metadata: { name: "nightly-20261201020000", namespace: NS, labels: { "velero.io/schedule-name": "nightly", "velero.io/storage-location": "primary" } },
  spec: { storageLocation: "primary", ttl: "720h0m0s", includedNamespaces: ["shop"] },
  status: { phase: "Completed", version: 1, formatVersion: "1.1.0", expiration: "2026-12-31T02:00:00Z" },
};
const restore = (spec: object, status?: object) => ({ apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "r1", namespace: NS }, spec, ...(status ? { status } : {}) });

describe("Velero's own writes pass", () => {
  it("knows the ServiceAccounts of `velero install` and of Velero's Helm chart", () => {
    expect(DEFAULT_VELERO_USERNAMES).toEqual(["system:serviceaccount:velero:velero", "system:serviceaccount:velero:velero-server"]);
    // --velero-service-account takes the full username the apiserver reports.
    expect(DEFAULT_VELERO_USERNAMES.map(serviceAccountUsernameProblem)).toEqual([undefined, undefined]);
    expect(serviceAccountUsernameProblem("velero")).toBe('"velero" is not a ServiceAccount username (system:serviceaccount:<namespace>:<name>)');
  });

  it("passes a Backup created with status.phase set (backup sync), even when its location does not exist here", () => {
    const out = admit(veleroReview("Backup", "CREATE", synced), veleroState([]), "velero").response;
    expect(out).toEqual({ uid: "b1", allowed: true });
    // The same Backup without a phase is a person's new Backup, judged as such.
    const fresh = { ...synced, status: undefined };
    expect(admit(veleroReview("Backup", "CREATE", fresh), veleroState([]), "velero").response.status?.message).toBe(
      `app-snapshots: Backup ${NS}/nightly-20261201020000 is invalid: spec.storageLocation: BackupStorageLocation ${NS}/primary does not exist`,
    );
    // Phases Velero still starts as new work are a person's new Backup too.
    for (const phase of ["", "New", "Queued", "ReadyToStart"]) {
      expect(admit(veleroReview("Backup", "CREATE", { ...synced, status: { phase } }), veleroState([]), "velero").response.allowed, phase).toBe(false);
    }
    for (const phase of ["PartiallyFailed", "Failed", "FailedValidation"]) {
      expect(admit(veleroReview("Backup", "CREATE", { ...synced, status: { phase } }), veleroState([]), "velero").response.allowed, phase).toBe(true);
    }
  });

  it("passes a Restore created with status.phase set", () => {
    expect(admit(veleroReview("Restore", "CREATE", restore({ backupName: "gone" }, { phase: "Completed" })), veleroState([]), "velero").response.allowed).toBe(true);
    expect(admit(veleroReview("Restore", "CREATE", restore({ backupName: "gone" })), veleroState([]), "velero").response.allowed).toBe(false);
    expect(admit(veleroReview("Restore", "CREATE", restore({ backupName: "gone" }, { phase: "New" })), veleroState([]), "velero").response.allowed).toBe(false);
  });

  it("passes every request of Velero's ServiceAccount, and only of the configured ones", () => {
    const broken = bsl("default", awsSpec({ accessMode: "RW" }));
    for (const username of DEFAULT_VELERO_USERNAMES) {
      expect(admit(veleroReview("BackupStorageLocation", "CREATE", broken, undefined, username), veleroState([]), "velero").response).toEqual({ uid: "b1", allowed: true });
    }
    expect(admit(veleroReview("BackupStorageLocation", "CREATE", broken, undefined, "system:serviceaccount:other:velero"), veleroState([]), "velero").response.allowed).toBe(false);
    const custom = buildClusterState({ objects: [], veleroServiceAccounts: ["system:serviceaccount:backup:velero"] });
    expect(admit(veleroReview("BackupStorageLocation", "CREATE", broken, undefined, "system:serviceaccount:backup:velero"), custom, "velero").response.allowed).toBe(true);
    expect(admit(veleroReview("BackupStorageLocation", "CREATE", broken, undefined, DEFAULT_VELERO_USERNAMES[0]), custom, "velero").response.allowed).toBe(false);
  });

  it("passes an UPDATE that leaves spec alone (a status write), however invalid the object is now", () => {
    const schedule = { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly", namespace: NS }, spec: { schedule: "0 2 31 2 *", template: { storageLocation: "gone" } } };
    const withStatus = { ...schedule, metadata: { ...schedule.metadata, resourceVersion: "2" }, status: { phase: "FailedValidation" } };
    expect(admit(veleroReview("Schedule", "UPDATE", withStatus, schedule), veleroState([]), "velero").response).toEqual({ uid: "b1", allowed: true });
    const backup = { ...synced, status: { phase: "InProgress" } };
    expect(admit(veleroReview("Backup", "UPDATE", { ...backup, status: { phase: "Completed" } }, backup), veleroState([]), "velero").response).toEqual({ uid: "b1", allowed: true });
  });

  it("still judges a person's spec change, without failing it for what was already so", () => {
    const schedule = { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly", namespace: NS }, spec: { schedule: "0 2 31 2 *", template: {} } };
    const paused = { ...schedule, spec: { ...schedule.spec, paused: true } };
    const out = admit(veleroReview("Schedule", "UPDATE", paused, schedule), veleroState([bsl("default", awsSpec({ default: true }))]), "velero").response;
    expect(out.allowed).toBe(true);
    expect(out.warnings?.[0]).toMatch(/^app-snapshots: spec\.schedule: .* \(already so before this change\)$/);
    const broken = { ...schedule, spec: { ...schedule.spec, schedule: "0 2 30 2 *" } };
    expect(admit(veleroReview("Schedule", "UPDATE", broken, { ...schedule, spec: { ...schedule.spec, schedule: "0 2 * * *" } }), veleroState([bsl("default", awsSpec({ default: true }))]), "velero").response.allowed).toBe(
      false,
    );
  });

  it("isVelerosOwn reads only the request: user, operation, phase and spec", () => {
    const review = veleroReview("Backup", "UPDATE", { ...synced, spec: { ...synced.spec, ttl: "1h" } }, synced);
    expect(isVelerosOwn(review.request, [])).toBe(false);
    expect(isVelerosOwn({ ...review.request, userInfo: undefined }, DEFAULT_VELERO_USERNAMES)).toBe(false);
    expect(isVelerosOwn({ ...review.request, userInfo: { username: DEFAULT_VELERO_USERNAMES[1] } }, DEFAULT_VELERO_USERNAMES)).toBe(true);
    // A Schedule is never synced: a phase in a created Schedule is no sign of Velero.
    const schedule = { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "s", namespace: NS }, spec: {}, status: { phase: "Enabled" } };
    expect(isVelerosOwn(veleroReview("Schedule", "CREATE", schedule).request, [])).toBe(false);
  });

  it("never newly fails an UPDATE for something that was already so (property)", () => {
    const value = fc.oneof(fc.constantFrom("true", "True", "yes", "", "/", "a/b", "RW", "1m", "soon", "s3Url", "http://x:9000/p"), fc.string({ maxLength: 6 }));
    const config = fc.dictionary(fc.constantFrom("region", "s3Url", "s3URL", "s3ForcePathStyle", "kmsKeyId", "customerKeyEncryptionFile", "tagging", "checksumAlgorithm", "bucket"), value, { maxKeys: 4 });
    const spec = fc.record(
      {
        provider: fc.constantFrom("aws", "velero.io/aws", "AWS", "Velero.io/aws", "replicated.com/nfs", "replicated.com/pvc"),
        objectStorage: fc.record({ bucket: value, prefix: value }, { requiredKeys: [] }),
        config,
        accessMode: fc.constantFrom("ReadOnly", "ReadWrite", "RW"),
        backupSyncPeriod: value,
        credential: fc.record({ name: value, key: value }, { requiredKeys: [] }),
      },
      { requiredKeys: ["provider"] },
    );
    fc.assert(
      fc.property(spec, (before) => {
        const old = bsl("edited", before);
        // A change that is valid by itself: the location's validationFrequency.
        const edited = bsl("edited", { ...before, validationFrequency: before.backupSyncPeriod === "1m" ? "2m" : "1m" });
        const out = admit(veleroReview("BackupStorageLocation", "UPDATE", edited, old), veleroState([old]), "velero").response;
        expect(out.allowed, out.status?.message).toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});
