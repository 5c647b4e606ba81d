import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { applyPatch } from "../../../src/admission/patch.js";
import { parseAdmissionReview, type AdmissionReview } from "../../../src/admission/review.js";
import { formatWarnings } from "../../../src/admission/warnings.js";
import { createReview, fixturePod, policyYaml, stateFrom } from "../pods/support.js";

const decodePatch = (patch: string | undefined) => JSON.parse(Buffer.from(patch ?? "", "base64").toString()) as Array<{ op: string; path: string; value?: unknown }>;
const state = stateFrom(policyYaml("p", "hooks: { preBackup: { command: [sync] } }"));

describe("admit", () => {
  it("answers a pod CREATE with a JSON patch that only adds the annotations, echoing uid and apiVersion", () => {
    const pod = fixturePod("postgres-statefulset");
    const out = admit(createReview(pod), state);
    expect(out.apiVersion).toBe("admission.k8s.io/v1");
    expect(out.kind).toBe("AdmissionReview");
    expect(out.response.uid).toBe("705ab4f5-6393-11e8-b7cc-42010a800002");
    expect(out.response.allowed).toBe(true);
    expect(out.response.patchType).toBe("JSONPatch");
    const patch = decodePatch(out.response.patch);
    expect(patch).toEqual([
      {
        op: "add",
        path: "/metadata/annotations",
        value: {
          "backup.velero.io/backup-volumes": "data,scratch",
          "pre.hook.backup.velero.io/container": "postgres",
          "pre.hook.backup.velero.io/command": '["sync"]',
          "pre.hook.backup.velero.io/on-error": "Fail",
          "appsnapshots.io/policy": "shop/p",
          "appsnapshots.io/managed": "backup-volumes,pre-backup",
        },
      },
    ]);
    expect(applyPatch(pod, patch as never).metadata?.annotations?.["appsnapshots.io/policy"]).toBe("shop/p");
    expect(out.response.warnings).toBeUndefined();
  });

  it("admits a pod whose fields have the wrong types unchanged, naming the field (the rules threw: an internal error)", () => {
    const pod = fixturePod("postgres-statefulset");
    for (const [broken, field] of [
      [{ ...pod, spec: { ...pod.spec, containers: {} } }, "spec.containers"],
      [{ ...pod, spec: { ...pod.spec, volumes: [{ name: 7 }] } }, "spec.volumes.0.name"],
      [{ ...pod, metadata: { ...pod.metadata, annotations: { a: 1 } } }, "metadata.annotations.a"],
      [{ ...pod, spec: { ...pod.spec, containers: [{ name: "c", volumeMounts: "data" }] } }, "spec.containers.0.volumeMounts"],
      [{ ...pod, metadata: { ...pod.metadata, ownerReferences: "[]" } }, "metadata.ownerReferences"],
    ] as const) {
      const out = admit(createReview(broken as never), state);
      expect(out.response.allowed, field).toBe(true);
      expect(out.response.patch, field).toBeUndefined();
      expect(out.response.warnings?.join("\n"), field).toContain(`the pod object is malformed (${field}`);
    }
    // Kubernetes' null for an absent field is no problem.
    const nulls = { ...pod, metadata: { ...pod.metadata, labels: null }, spec: { ...pod.spec, initContainers: null } };
    expect(admit(createReview(nulls as never), state).response.patchType).toBe("JSONPatch");
  });

  it("patches single annotation keys (escaped) when the pod has annotations already", () => {
    const pod = fixturePod("istio-sidecar");
    const patch = decodePatch(admit(createReview(pod), stateFrom(policyYaml("p", "{}"))).response.patch);
    expect(patch).toEqual([
      { op: "add", path: "/metadata/annotations/backup.velero.io~1backup-volumes", value: "uploads,cache,istio-data" },
      // istio-envoy is memory-backed: excluded in both modes unless a policy names it.
      { op: "add", path: "/metadata/annotations/backup.velero.io~1backup-volumes-excludes", value: "istio-envoy" },
      { op: "add", path: "/metadata/annotations/appsnapshots.io~1policy", value: "shop/p" },
      { op: "add", path: "/metadata/annotations/appsnapshots.io~1managed", value: "backup-volumes,backup-volumes-excludes" },
    ]);
  });

  it("echoes admission.k8s.io/v1beta1", () => {
    const review = { ...createReview(fixturePod("postgres-statefulset")), apiVersion: "admission.k8s.io/v1beta1" } as AdmissionReview;
    expect(admit(review, state).apiVersion).toBe("admission.k8s.io/v1beta1");
  });

  it("allows every operation but CREATE unchanged", () => {
    const out = admit(createReview(fixturePod("postgres-statefulset"), "shop", "UPDATE"), state);
    expect(out.response).toEqual({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
  });

  it("allows other kinds unchanged", () => {
    const review = createReview(fixturePod("postgres-statefulset"));
    review.request.kind = { group: "apps", version: "v1", kind: "Deployment" };
    expect(admit(review, state).response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it("returns warnings prefixed and short", () => {
    const out = admit(createReview(fixturePod("handwritten-annotations")), state);
    expect(out.response.warnings!.length).toBeGreaterThan(5);
    for (const warning of out.response.warnings!) {
      expect(warning.startsWith("app-snapshots: ")).toBe(true);
      expect(warning.length).toBeLessThan(200);
    }
  });
});

describe("formatWarnings", () => {
  it("caps at 10 with an 'and N more' line, shortens long ones, flattens newlines", () => {
    const many = Array.from({ length: 14 }, (_, i) => `w${i}`);
    expect(formatWarnings(many)).toEqual([...many.slice(0, 9).map((w) => `app-snapshots: ${w}`), "app-snapshots: and 5 more"]);
    const long = formatWarnings(["x".repeat(500)])[0]!;
    expect(long).toHaveLength(199);
    expect(long.endsWith("...")).toBe(true);
    expect(formatWarnings(["a\nb"])).toEqual(["app-snapshots: a b"]);
    expect(formatWarnings(["runs \u201csync\u201d"])).toEqual(["app-snapshots: runs \\u201csync\\u201d"]);
  });
});

describe("parseAdmissionReview", () => {
  it("accepts a real review", () => {
    expect(parseAdmissionReview(createReview(fixturePod("postgres-statefulset")))).toHaveProperty("review");
  });
  it.each([
    [null, "not an AdmissionReview: Invalid input: expected object, received null"],
    [{}, "not an AdmissionReview: apiVersion: Invalid option: expected one of \"admission.k8s.io/v1\"|\"admission.k8s.io/v1beta1\""],
    [{ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }, "not an AdmissionReview: request: Invalid input: expected object, received undefined"],
    [{ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "" } }, "not an AdmissionReview: request.uid: Too small: expected string to have >=1 characters"],
  ])("rejects %j with a message naming the field", (body, message) => {
    expect(parseAdmissionReview(body)).toEqual({ error: message });
  });
});
