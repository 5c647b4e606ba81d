import type { Pod } from "../pods/pod.js";
import type { AdmissionReview } from "./review.js";
import { warningTarget, type WorkloadRef } from "./warningTarget.js";

/** Who reports the Events (a qualified name, as events.k8s.io/v1 requires). */
export const REPORTING_CONTROLLER = "appsnapshots.io/webhook";
export const WARNING_REASON = "BackupAnnotations";
export const WARNING_ACTION = "Admit";

/** One warning about one workload: recorded as an Event on `regarding`, or only logged without it. */
export interface WarningOccurrence {
  namespace: string;
  regarding?: WorkloadRef;
  /** What the log line names: the workload, or the pod when there is none. */
  subject: string;
  reason: string;
  action: string;
  note: string;
}

/**
 * The warnings of a pod review, one per distinct text, addressed to the workload behind the pod.
 * The warnings are the decision's full texts (the response carries them shortened and prefixed for
 * HTTP Warning headers); the Event names its reporter. A dry run records nothing: its client saw the warnings,
 * and a dry run must have no side effects.
 */
export function podWarningOccurrences(review: AdmissionReview, warnings: readonly string[]): WarningOccurrence[] {
  const request = review.request;
  if (request.dryRun === true || warnings.length === 0) return [];
  const pod = (request.object ?? {}) as Pod;
  const namespace = request.namespace ?? pod.metadata?.namespace ?? "default";
  const regarding = warningTarget(pod, namespace);
  const podName = request.name || pod.metadata?.name || (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : "(unnamed)");
  const subject = regarding ? `${regarding.kind}/${regarding.name}` : `Pod/${podName}`;
  const notes = new Set(warnings);
  return [...notes].map((note) => ({ namespace, ...(regarding ? { regarding } : {}), subject, reason: WARNING_REASON, action: WARNING_ACTION, note }));
}
