import type { ClusterState } from "./state.js";
import type { AdmissionRequest, AdmissionReview, AdmissionReviewResponse, AdmissionResponse } from "./review.js";
import { formatWarnings } from "./warnings.js";
import { diffSubtree, encodePatch, type Operation } from "./patch.js";
import { decidePod } from "../pods/decide.js";
import { admitVelero, isVeleroRequest } from "./veleroAdmission.js";
import type { Pod } from "../pods/pod.js";
import { podShapeProblem } from "../pods/podShape.js";
import { MAX_REQUEST_DEPTH, nestsDeeperThan } from "./nesting.js";

/** What a decision says, before it is encoded as an AdmissionResponse. */
export interface Verdict {
  allowed: boolean;
  /** JSON Patch against the request's object; empty or absent when nothing changes. */
  patch?: Operation[];
  warnings: string[];
  denial?: { code: number; message: string; reason?: string };
}

export function admitPod(request: AdmissionRequest, state: ClusterState): Verdict {
  if (request.operation !== "CREATE" || request.subResource) return { allowed: true, warnings: [] };
  const pod = request.object as Pod | undefined;
  if (!pod || typeof pod !== "object") return { allowed: true, warnings: ["request carries no pod object; admitted unchanged"] };
  const problem = podShapeProblem(pod);
  if (problem) return { allowed: true, warnings: [`the pod object is malformed (${problem}); admitted unchanged`] };
  const namespace = request.namespace ?? pod.metadata?.namespace ?? "default";
  const decision = decidePod(pod, namespace, state);
  // The rules change only these two subtrees (property-tested), so only they are diffed.
  const patch =
    pod.metadata === undefined && decision.pod.metadata !== undefined
      ? diffSubtree(["metadata"], undefined, decision.pod.metadata)
      : [
          ...diffSubtree(["metadata", "annotations"], pod.metadata?.annotations, decision.pod.metadata?.annotations),
          ...diffSubtree(["spec", "initContainers"], pod.spec?.initContainers, decision.pod.spec?.initContainers),
        ];
  return { allowed: true, patch, warnings: decision.warnings };
}

export function encodeResponse(review: AdmissionReview, verdict: Verdict): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid: review.request.uid, allowed: verdict.allowed };
  if (verdict.allowed && verdict.patch && verdict.patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = encodePatch(verdict.patch);
  }
  if (verdict.warnings.length > 0) response.warnings = formatWarnings(verdict.warnings);
  if (!verdict.allowed && verdict.denial) response.status = verdict.denial;
  return { apiVersion: review.apiVersion, kind: "AdmissionReview", response };
}

function isPodRequest(request: AdmissionRequest): boolean {
  return request.kind.group === "" && request.kind.kind === "Pod";
}

/** Which decisions a webhook path makes; a request of any other kind is allowed unchanged. */
export type Webhook = "pods" | "velero";

/** The one entry point: any AdmissionReview and a state snapshot in, the AdmissionReview response out. */
export function admit(review: AdmissionReview, state: ClusterState, webhook?: Webhook): AdmissionReviewResponse {
  return encodeResponse(review, tooDeepVerdict(review, webhook) ?? decide(review, state, webhook));
}

/**
 * The answer to a request nested deeper than any real object (see MAX_REQUEST_DEPTH), given before
 * anything reads it; undefined for every other request. A pod is admitted unchanged with a warning,
 * as the pod webhook fails open; a Velero object is denied saying why, as that webhook fails closed.
 */
export function tooDeepVerdict(review: AdmissionReview, webhook?: Webhook): Verdict | undefined {
  const request = review.request;
  if (!nestsDeeperThan(request, MAX_REQUEST_DEPTH)) return undefined;
  const problem = `nested deeper than ${MAX_REQUEST_DEPTH} levels, which no real object is`;
  if (isPodRequest(request) && webhook !== "velero") return { allowed: true, warnings: [`the request is ${problem}; pod admitted unchanged`] };
  if (isVeleroRequest(request) && webhook !== "pods") {
    const name = `${request.namespace ?? "?"}/${request.name ?? "?"}`;
    return { allowed: false, warnings: [], denial: { code: 422, reason: "Invalid", message: `app-snapshots: ${request.kind.kind} ${name} is ${problem}; nothing was checked` } };
  }
  return { allowed: true, warnings: [] };
}

/** The decision before encoding: its warnings are the full texts (the response shortens and caps them). */
export function decide(review: AdmissionReview, state: ClusterState, webhook?: Webhook): Verdict {
  const request = review.request;
  if (isPodRequest(request) && webhook !== "velero") return admitPod(request, state);
  if (isVeleroRequest(request) && webhook !== "pods") return admitVelero(request, state);
  return { allowed: true, warnings: [] };
}
