import { z } from "zod";

export const ADMISSION_VERSIONS = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] as const;

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });
const groupVersionResource = z.object({ group: z.string(), version: z.string(), resource: z.string() });

const request = z
  .object({
    uid: z.string().min(1),
    kind: groupVersionKind,
    resource: groupVersionResource,
    subResource: z.string().optional(),
    name: z.string().optional(),
    namespace: z.string().optional(),
    operation: z.enum(["CREATE", "UPDATE", "DELETE", "CONNECT"]),
    userInfo: z.object({ username: z.string().optional(), groups: z.array(z.string()).optional() }).loose().optional(),
    object: z.unknown().optional(),
    oldObject: z.unknown().optional(),
    dryRun: z.boolean().optional(),
  })
  .loose();

const review = z.object({
  apiVersion: z.enum(ADMISSION_VERSIONS),
  kind: z.literal("AdmissionReview"),
  request,
});

export type AdmissionReview = z.infer<typeof review>;
export type AdmissionRequest = AdmissionReview["request"];

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  /** base64 of the JSON Patch document. */
  patch?: string;
  warnings?: string[];
  status?: { code: number; message: string; reason?: string };
}

export interface AdmissionReviewResponse {
  apiVersion: (typeof ADMISSION_VERSIONS)[number];
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** Validates an AdmissionReview; the error names the first wrong field, for a 400 or an exit-2 message. */
export function parseAdmissionReview(body: unknown): { review: AdmissionReview } | { error: string } {
  const result = review.safeParse(body);
  if (result.success) return { review: result.data };
  const issue = result.error.issues[0]!;
  const path = issue.path.join(".");
  return { error: `not an AdmissionReview: ${path ? `${path}: ` : ""}${issue.message}` };
}
