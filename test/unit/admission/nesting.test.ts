import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { MAX_REQUEST_DEPTH, nestsDeeperThan } from "../../../src/admission/nesting.js";
import { createReview, fixturePod, stateFrom, policyYaml } from "../pods/support.js";
import { awsSpec, bsl, NS, veleroReview, veleroState } from "../velero/support.js";

const arrays = (depth: number): unknown => JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);
const objects = (depth: number): unknown => JSON.parse(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`);
/** 100,000 levels: JSON.stringify, structuredClone and template strings overflow the stack on it. */
const HOSTILE = 100_000;

describe("nestsDeeperThan", () => {
  it("counts arrays and objects, a scalar being 0 deep, and measures any depth without recursion", () => {
    expect(nestsDeeperThan("x", 0)).toBe(false);
    expect(nestsDeeperThan([], 0)).toBe(true);
    for (const make of [arrays, objects]) {
      expect(nestsDeeperThan(make(MAX_REQUEST_DEPTH), MAX_REQUEST_DEPTH)).toBe(false);
      expect(nestsDeeperThan(make(MAX_REQUEST_DEPTH + 1), MAX_REQUEST_DEPTH)).toBe(true);
      expect(nestsDeeperThan(make(HOSTILE), MAX_REQUEST_DEPTH)).toBe(true);
    }
    // The deep branch is found past shallow siblings.
    expect(nestsDeeperThan({ a: 1, b: [2, { c: "x" }], d: [objects(MAX_REQUEST_DEPTH)] }, MAX_REQUEST_DEPTH)).toBe(true);
  });

  it("leaves real requests far below the limit (every fixture pod and the Velero objects of the tests nest at most 20 deep)", () => {
    const pods = readdirSync(new URL("../../fixtures/pods/", import.meta.url)).map((file) => createReview(fixturePod(file.replace(/\.yaml$/, ""))));
    const restore = { apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "r", namespace: NS }, spec: { backupName: "b", hooks: { resources: [{ name: "h", postHooks: [{ init: { initContainers: [{ name: "c", image: "busybox", securityContext: { capabilities: { drop: ["ALL"] } } }] } }] }] } } };
    const velero = [veleroReview("BackupStorageLocation", "CREATE", bsl("default", awsSpec())), veleroReview("Restore", "CREATE", restore)];
    for (const review of [...pods, ...velero]) expect(nestsDeeperThan(review.request, 20), review.request.name).toBe(false);
  });
});

describe("a request nested deeper than MAX_REQUEST_DEPTH", () => {
  const locations = [bsl("default", awsSpec())];

  it("is denied on the Velero webhook with the reason, before any rule runs (a 100,000-deep spec overflowed the stack in JSON.stringify)", () => {
    const deepSpec = { ...bsl("default", awsSpec()), spec: arrays(HOSTILE) };
    const reviews = [
      veleroReview("BackupStorageLocation", "UPDATE", deepSpec, bsl("default", awsSpec())),
      veleroReview("BackupStorageLocation", "UPDATE", bsl("default", awsSpec()), deepSpec),
      veleroReview("Backup", "CREATE", { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "b", namespace: NS }, spec: { storageLocation: "default", labelSelector: objects(HOSTILE) } }),
    ];
    for (const review of reviews) {
      const out = admit(review, veleroState(locations), "velero").response;
      expect(out.allowed).toBe(false);
      expect(out.status).toEqual({
        code: 422,
        reason: "Invalid",
        message: `app-snapshots: ${review.request.kind.kind} ${NS}/${review.request.name} is nested deeper than 100 levels, which no real object is; nothing was checked`,
      });
    }
  });

  it("admits a pod unchanged with a warning: the pod webhook fails open", () => {
    const pod = fixturePod("postgres-statefulset");
    const review = createReview({ ...pod, spec: { ...pod.spec, initContainers: [{ name: "x", env: arrays(HOSTILE) }] } });
    const out = admit(review, stateFrom(policyYaml("p", "{}", "default")), "pods").response;
    expect(out).toEqual({ uid: review.request.uid, allowed: true, warnings: [expect.stringContaining("the request is nested deeper than 100 levels, which no real object is; pod admitted unchanged")] });
  });

  it("is allowed without a word when the webhook does not judge its kind", () => {
    const pod = createReview({ ...fixturePod("postgres-statefulset"), metadata: { name: "p", labels: objects(HOSTILE) as never } });
    expect(admit(pod, veleroState(locations), "velero").response).toEqual({ uid: pod.request.uid, allowed: true });
  });
});
