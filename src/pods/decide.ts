import { namespaceLabels, type ClusterState } from "../admission/state.js";
import { IGNORE_LABEL, MANAGED_ANNOTATION, MIRROR_POD_ANNOTATION, POLICY_ANNOTATION, RESTORE_HOOK_ANNOTATION } from "../policy/annotations.js";
import { policyRef, type Policy } from "../policy/types.js";
import { BACKUP_VOLUMES, BACKUP_VOLUMES_EXCLUDES, HOOK_PHASES, HOOK_PREFIX, PHASE_TITLE, RESTORE_NAME_LABEL } from "../velero/annotations.js";
import { appContainer } from "./appContainer.js";
import { writeVolumeAnnotations } from "./backupVolumes.js";
import { choosePolicy, ignoredPoliciesWarning } from "./choosePolicy.js";
import { applyPolicyHooks, lintHookAnnotations } from "./hooks.js";
import type { Container, Pod } from "./pod.js";
import { fixRestoredPod } from "./restored.js";
import { insertRestoreHook, restoreHookAnnotation } from "./restoreHook.js";
import { runToCompletionReason } from "./runToCompletion.js";
import { volumeVerdicts } from "./verdicts.js";
import { choosePolicyVolumes, describeVolumes } from "./volumes.js";
import type { VolumeVerdict } from "./volumeVerdict.js";
import { claimReasonsIn, hostPathClaimWarnings } from "./hostPathClaims.js";

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
  /** Per pod volume: does Velero's file-system backup take it, in each mode, and why. */
  volumes: VolumeVerdict[];
}

/** Why app-snapshots must not touch this pod at all, or undefined. */
export function skipReason(pod: Pod, namespace: string, state: ClusterState): string | undefined {
  if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return "mirror pod";
  if (pod.metadata?.labels?.[IGNORE_LABEL] === "true") return `pod labelled ${IGNORE_LABEL}=true`;
  if (namespaceLabels(state, namespace)[IGNORE_LABEL] === "true") return `namespace labelled ${IGNORE_LABEL}=true`;
  if (state.webhookNamespace !== undefined && namespace === state.webhookNamespace) return "pod in app-snapshots' own namespace";
  return undefined;
}

/** The annotation keys of each MANAGED_ANNOTATION group. */
function managedKeys(annotations: Record<string, string>, group: string): string[] {
  if (group === "backup-volumes") return [BACKUP_VOLUMES];
  if (group === "backup-volumes-excludes") return [BACKUP_VOLUMES_EXCLUDES];
  if (group === "restore-hook") return [RESTORE_HOOK_ANNOTATION];
  const phase = HOOK_PHASES.find((p) => PHASE_TITLE[p] === group);
  return phase ? Object.keys(annotations).filter((key) => key.startsWith(HOOK_PREFIX[phase])) : [];
}

/**
 * Removes what app-snapshots wrote on an earlier pass (listed in MANAGED_ANNOTATION), so it is
 * recomputed for the pod as it is now (another webhook may have added volumes or containers)
 * and never mistaken for the user's own annotations.
 */
function stripManaged(annotations: Record<string, string>): void {
  const groups = annotations[MANAGED_ANNOTATION]?.split(",") ?? [];
  for (const group of groups) for (const key of managedKeys(annotations, group.trim())) delete annotations[key];
  delete annotations[MANAGED_ANNOTATION];
}

/**
 * Everything app-snapshots does to a pod being created, as a pure function of the pod, its
 * namespace and the cluster state. The input is never modified (and never deep-copied: a 10 KB
 * pod is admitted in microseconds).
 */
export function decidePod(original: Pod, namespace: string, state: ClusterState): PodDecision {
  const pod = original;
  const podVolumes = describeVolumes(pod);
  const podReason = runToCompletionReason(pod);
  const skipped = skipReason(original, namespace, state);
  const hostPathClaims = claimReasonsIn(namespace, state.hostPathClaims);
  if (skipped) {
    const volumes = volumeVerdicts(podVolumes, pod.metadata?.annotations ?? {}, { podReason, why: new Map(), fallback: `app-snapshots leaves this pod alone (${skipped})`, hostPathClaims });
    return { pod: original, warnings: [], policy: undefined, skipped, volumes };
  }

  const annotations: Record<string, string> = { ...(pod.metadata?.annotations ?? {}) };
  const choice = choosePolicy(pod, namespace, state);
  const policy: Policy | undefined = choice.policy;
  const ref = policy ? policyRef(policy) : undefined;
  // The pod carries this policy's mark: app-snapshots has seen it before (a reinvocation, or a
  // restored pod), and reported on its annotations then.
  const seenBefore = ref !== undefined && annotations[POLICY_ANNOTATION] === ref;
  if (policy) stripManaged(annotations);

  const annotationWarnings = lintHookAnnotations(annotations);
  const ignored = ignoredPoliciesWarning(choice);
  if (ignored) annotationWarnings.push(ignored);
  const restored = fixRestoredPod(pod);
  const containerWarnings = [...restored.warnings];
  let initContainers: Container[] | undefined = restored.initContainers;

  let why = new Map<string, string>();
  let fallback = "no policy applies; the pod's own annotations decide";

  if (policy && ref) {
    const managed: string[] = [];
    const app = appContainer(pod);
    const { mode } = policy.spec.volumes;
    if (mode === "None") {
      fallback = `policy ${ref} has volumes.mode None and writes no volume annotations`;
    } else if (podReason) {
      annotationWarnings.push(`no volume annotations written: this is ${podReason}`);
    } else {
      const written = writeVolumeAnnotations(podVolumes, annotations, policy.spec.volumes, ref);
      annotationWarnings.push(...written.warnings);
      managed.push(...written.managed);
      why = written.why;
    }
    const hooks = applyPolicyHooks(pod, annotations, policy.spec.hooks, ref, app);
    annotationWarnings.push(...hooks.warnings);
    managed.push(...hooks.managed);
    const hook = policy.spec.hooks.initRestore;
    if (hook) {
      const written = restoreHookAnnotation(pod, hook, choosePolicyVolumes(podVolumes, policy.spec.volumes, ref), app, ref);
      annotationWarnings.push(...written.warnings, ...(written.refused ? [written.refused] : []));
      if (written.value !== undefined) {
        annotations[RESTORE_HOOK_ANNOTATION] = written.value;
        managed.push("restore-hook");
      }
    }
    annotations[POLICY_ANNOTATION] = ref;
    if (managed.length > 0) annotations[MANAGED_ANNOTATION] = managed.join(",");
  }

  // A restored pod gets the init-restore hook it was backed up with, whether or not a policy is here yet.
  const restoreHook = annotations[RESTORE_HOOK_ANNOTATION];
  if (restoreHook !== undefined && pod.metadata?.labels?.[RESTORE_NAME_LABEL] !== undefined) {
    const inserted = insertRestoreHook(pod, initContainers ?? pod.spec?.initContainers ?? [], restoreHook);
    containerWarnings.push(...inserted.warnings);
    initContainers = inserted.initContainers ?? initContainers;
  }

  const before = original.metadata?.annotations ?? {};
  const annotationsChanged =
    Object.keys(annotations).length !== Object.keys(before).length || Object.entries(annotations).some(([k, v]) => before[k] !== v);
  let result = original;
  if (annotationsChanged || initContainers) {
    result = { ...original };
    if (annotationsChanged) result.metadata = { ...(original.metadata ?? {}), annotations };
    if (initContainers) result.spec = { ...(original.spec ?? {}), initContainers };
  }
  const volumes = volumeVerdicts(podVolumes, result.metadata?.annotations ?? {}, { podReason, why, fallback, hostPathClaims });
  // Container changes are reported whenever they happen; annotation findings once per policy; a claim Velero will
  // skip every time (its volume changes under the same annotations).
  const warnings = [...(seenBefore ? [] : annotationWarnings), ...containerWarnings, ...hostPathClaimWarnings(podVolumes, result.metadata?.annotations ?? {}, hostPathClaims)];
  return { pod: result, warnings, policy: ref, skipped: undefined, volumes };
}
