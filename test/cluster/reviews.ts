import type { AdmissionReview } from "../../src/admission/review.js";

export interface ReviewInput {
  group: string;
  kind: string;
  resource: string;
  namespace: string;
  operation: "CREATE" | "UPDATE" | "DELETE";
  object: unknown;
  oldObject?: unknown;
  name?: string;
  uid?: string;
}

/** An admission.k8s.io/v1 AdmissionReview as the apiserver sends it (tests, bench, fixtures). */
export function admissionReview(input: ReviewInput): AdmissionReview {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: input.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: input.group, version: "v1", kind: input.kind },
      resource: { group: input.group, version: "v1", resource: input.resource },
      namespace: input.namespace,
      ...(input.name ? { name: input.name } : {}),
      operation: input.operation,
      object: input.object,
      ...(input.oldObject !== undefined ? { oldObject: input.oldObject } : {}),
    },
  };
}
