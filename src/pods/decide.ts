import { namespaceLabels, type ClusterState } from "../admission/state.js";
import { IGNORE_LABEL, MIRROR_POD_ANNOTATION, POLICY_ANNOTATION } from "../policy/annotations.js";
import { policyRef, type Policy } from "../policy/types.js";
import { BACKUP_VOLUMES, BACKUP_VOLUMES_EXCLUDES, formatVolumeList } from "../velero/annotations.js";
import { choosePolicy, ignoredPoliciesWarning } from "./choosePolicy.js";
import { applyPolicyHooks, lintHookAnnotations } from "./hooks.js";
import type { Pod } from "./pod.js";
import { fixRestoredPod } from "./restored.js";
import { canonicaliseVolumeList, describeVolumes, selectBackupVolumes, volumesToExclude } from "./volumes.js";

export interface PodDecision {
  /**
   * The pod as it should be stored: the original when nothing changes, else a copy that shares
   * every unchanged subtree with it (only metadata.annotations and spec.initContainers are new).
   */
  pod: Pod;
  /** Plain messages; the admission layer prefixes, shortens and caps them. */
  warnings: string[];
  /** The policy applied, as written to appsnapshots.io/policy. */
  policy: string | undefined;
  /** Set when the pod is left alone entirely, with the reason. */
  skipped: string | undefined;
}

/** Why app-snapshots must not touch this pod at all, or undefined. */
export function skipReason(pod: Pod, namespace: string, state: ClusterState): string | undefined {
  if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return "mirror pod";
  if (pod.metadata?.labels?.[IGNORE_LABEL] === "true") return `pod labelled ${IGNORE_LABEL}=true`;
  if (namespaceLabels(state, namespace)[IGNORE_LABEL] === "true") return `namespace labelled ${IGNORE_LABEL}=true`;
  if (state.webhookNamespace !== undefined && namespace === state.webhookNamespace) return "pod in app-snapshots' own namespace";
  return undefined;
}

function applyVolumes(pod: Pod, annotations: Record<string, string>, policy: Policy, ref: string): string[] {
  const { mode } = policy.spec.volumes;
  if (mode === "None") return [];
  const optIn = mode === "OptIn";
  const key = optIn ? BACKUP_VOLUMES : BACKUP_VOLUMES_EXCLUDES;
  const podVolumes = describeVolumes(pod);
  const selected = selectBackupVolumes(podVolumes, policy.spec.volumes);
  const existing = annotations[key];
  if (existing === undefined) {
    const names = optIn ? selected : volumesToExclude(podVolumes, selected);
    if (names.length > 0) annotations[key] = formatVolumeList(names);
    return [];
  }
  // User annotations win: keep their set, in the form Velero reads correctly.
  const canonical = canonicaliseVolumeList(podVolumes, key, existing, optIn);
  annotations[key] = formatVolumeList(canonical.names);
  const warnings = canonical.warnings;
  if (optIn) {
    const missing = selected.filter((name) => !canonical.names.includes(name));
    if (missing.length > 0) warnings.push(`pod sets ${key} itself; policy ${ref} would also back up: ${missing.join(", ")}`);
  } else {
    const extra = canonical.names.filter((name) => selected.includes(name));
    if (extra.length > 0) warnings.push(`pod sets ${key} itself; it excludes volumes policy ${ref} selects: ${extra.join(", ")}`);
  }
  return warnings;
}

/**
 * Everything app-snapshots does to a pod being created, as a pure function of the pod, its
 * namespace and the cluster state. The input is never modified (and never deep-copied: a 10 KB
 * pod is admitted in microseconds).
 */
export function decidePod(original: Pod, namespace: string, state: ClusterState): PodDecision {
  const skipped = skipReason(original, namespace, state);
  if (skipped) return { pod: original, warnings: [], policy: undefined, skipped };

  const pod = original;
  const annotations: Record<string, string> = { ...(pod.metadata?.annotations ?? {}) };
  const warnings = lintHookAnnotations(annotations);

  const choice = choosePolicy(pod, namespace, state);
  const ignored = ignoredPoliciesWarning(choice);
  if (ignored) warnings.push(ignored);
  let ref: string | undefined;
  if (choice.policy) {
    ref = policyRef(choice.policy);
    warnings.push(...applyVolumes(pod, annotations, choice.policy, ref));
    warnings.push(...applyPolicyHooks(pod, annotations, choice.policy.spec.hooks, ref));
    annotations[POLICY_ANNOTATION] = ref;
  }
  const restored = fixRestoredPod(pod);
  warnings.push(...restored.warnings);

  const before = original.metadata?.annotations ?? {};
  const annotationsChanged =
    Object.keys(annotations).length !== Object.keys(before).length || Object.entries(annotations).some(([k, v]) => before[k] !== v);
  let result = original;
  if (annotationsChanged || restored.initContainers) {
    result = { ...original };
    if (annotationsChanged) result.metadata = { ...(original.metadata ?? {}), annotations };
    if (restored.initContainers) result.spec = { ...(original.spec ?? {}), initContainers: restored.initContainers };
  }
  return { pod: result, warnings, policy: ref, skipped: undefined };
}
