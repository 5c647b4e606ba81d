import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deploymentOfReplicaSet, warningTarget } from "../../../src/admission/warningTarget.js";
import { podWarningOccurrences } from "../../../src/admission/warningEvents.js";
import type { Pod } from "../../../src/pods/pod.js";
import { createReview } from "../pods/support.js";

const owned = (owner: object, labels: Record<string, string> = {}): Pod => ({
  metadata: { generateName: "x-", labels, ownerReferences: [owner] },
  spec: { containers: [{ name: "app" }] },
});
const controller = (apiVersion: string, kind: string, name: string, uid = "u-1") => ({ apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true });

describe("warningTarget", () => {
  it("puts a Deployment's pod warnings on the Deployment, named from the ReplicaSet and pod-template-hash", () => {
    const pod = owned(controller("apps/v1", "ReplicaSet", "web-frontend-7d9f8b6c5d"), { app: "web", "pod-template-hash": "7d9f8b6c5d" });
    expect(warningTarget(pod, "shop")).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "web-frontend", namespace: "shop" });
  });

  it.each([
    ["no pod-template-hash label (a ReplicaSet made by hand or another controller)", "web-7d9f8b6c5d", {}],
    ["a hash the name does not end with", "web-abc", { "pod-template-hash": "7d9f8b6c5d" }],
    ["a name that is only the hash", "-7d9f8b6c5d", { "pod-template-hash": "7d9f8b6c5d" }],
  ])("keeps the ReplicaSet (with its uid) for %s", (_name, rsName, labels) => {
    expect(warningTarget(owned(controller("apps/v1", "ReplicaSet", rsName, "rs-uid"), labels), "shop")).toEqual({
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      name: rsName,
      namespace: "shop",
      uid: "rs-uid",
    });
  });

  it.each([
    ["apps/v1", "StatefulSet", "postgres"],
    ["apps/v1", "DaemonSet", "node-exporter"],
    // A CronJob's Job is named <cronjob>-<minutes>, but so may any Job be: the Job it stays.
    ["batch/v1", "Job", "nightly-backup-29412345"],
    ["apps.kruise.io/v1alpha1", "CloneSet", "custom"],
  ])("puts the warnings of a %s %s's pod on its controller, with its uid", (apiVersion, kind, name) => {
    expect(warningTarget(owned(controller(apiVersion, kind, name, "c-uid")), "ns1")).toEqual({ apiVersion, kind, name, namespace: "ns1", uid: "c-uid" });
  });

  it("has no target for a bare pod, an owner that is not the controller, or malformed owner references", () => {
    expect(warningTarget({ metadata: { name: "bare" } }, "ns")).toBeUndefined();
    expect(warningTarget(owned({ apiVersion: "apps/v1", kind: "StatefulSet", name: "s", uid: "u" }), "ns")).toBeUndefined();
    expect(warningTarget(owned({ apiVersion: "apps/v1", kind: "StatefulSet", name: "s", controller: false }), "ns")).toBeUndefined();
    expect(warningTarget(owned({ kind: "StatefulSet", name: "s", controller: true }), "ns")).toBeUndefined();
    expect(warningTarget({ metadata: { ownerReferences: "nope" } }, "ns")).toBeUndefined();
    expect(warningTarget({ metadata: { ownerReferences: [null, 3] } }, "ns")).toBeUndefined();
  });
});

/** The deployment controller's naming (kubernetes v1.34 pkg/controller/deployment/sync.go generateReplicaSetName). */
function generateReplicaSetName(deployment: string, hash: string): string {
  const max = 253 - 1 - hash.length;
  return deployment.length > max ? `${deployment.slice(0, max)}-${hash}` : `${deployment}-${hash}`;
}

describe("deploymentOfReplicaSet", () => {
  const dnsName = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,260}[a-z0-9])?$/);
  const hash = fc.stringMatching(/^[a-z0-9]{1,10}$/);

  it("recovers the Deployment's name from every ReplicaSet name the controller makes, or gives none when it was cut", () => {
    fc.assert(
      fc.property(dnsName, hash, (deployment, h) => {
        const rs = generateReplicaSetName(deployment, h);
        const derived = deploymentOfReplicaSet(rs, h);
        if (rs.length < 253) expect(derived).toBe(deployment);
        else expect(derived === undefined || derived === deployment).toBe(true);
      }),
    );
  });

  it("gives none at the 253-character limit, where the Deployment's name may have been cut", () => {
    const long = "d".repeat(260);
    expect(deploymentOfReplicaSet(generateReplicaSetName(long, "5c7b9d"), "5c7b9d")).toBeUndefined();
  });
});

describe("podWarningOccurrences", () => {
  const pod = owned(controller("apps/v1", "StatefulSet", "postgres", "ss-uid"));

  it("gives one occurrence per distinct warning, without our prefix, addressed to the workload", () => {
    const review = createReview(pod, "shop");
    expect(podWarningOccurrences(review, ["a", "b", "a"])).toEqual([
      { namespace: "shop", regarding: { apiVersion: "apps/v1", kind: "StatefulSet", name: "postgres", namespace: "shop", uid: "ss-uid" }, subject: "StatefulSet/postgres", reason: "BackupAnnotations", action: "Admit", note: "a" },
      { namespace: "shop", regarding: { apiVersion: "apps/v1", kind: "StatefulSet", name: "postgres", namespace: "shop", uid: "ss-uid" }, subject: "StatefulSet/postgres", reason: "BackupAnnotations", action: "Admit", note: "b" },
    ]);
  });

  it("names a bare pod for the log and gives it no Event target", () => {
    const [occurrence] = podWarningOccurrences(createReview({ metadata: { name: "debug" } }, "shop"), ["a"]);
    expect(occurrence).toEqual({ namespace: "shop", subject: "Pod/debug", reason: "BackupAnnotations", action: "Admit", note: "a" });
  });

  it("records nothing for a dry run (no side effects) or without warnings", () => {
    const review = createReview(pod, "shop");
    expect(podWarningOccurrences({ ...review, request: { ...review.request, dryRun: true } }, ["a"])).toEqual([]);
    expect(podWarningOccurrences(review, [])).toEqual([]);
  });
});
