import { RESTORE_NAME_LABEL, RESTORE_WAIT_CONTAINERS } from "../velero/annotations.js";
import type { Container, Pod } from "./pod.js";

/** The uid Velero's own default securityContext uses for restore-wait. */
export const DEFAULT_RESTORE_WAIT_UID = 1000;

export interface RestoredPodFix {
  /** The new init container list, or undefined when nothing changes. */
  initContainers: Container[] | undefined;
  warnings: string[];
}

/**
 * On pods Velero restores: keep `restore-wait` at index 0 (init containers before it deadlock the
 * restore, velero#3008) and give it a numeric runAsUser when non-root is required (the Velero image's
 * user is the non-numeric "cnb", which the kubelet refuses under runAsNonRoot, velero#9985).
 * Never adds restore-wait to a pod that lacks it (it would wait forever). The pod is not modified.
 */
export function fixRestoredPod(pod: Pod): RestoredPodFix {
  const unchanged: RestoredPodFix = { initContainers: undefined, warnings: [] };
  if (pod.metadata?.labels?.[RESTORE_NAME_LABEL] === undefined) return unchanged;
  const original = pod.spec?.initContainers;
  if (!original) return unchanged;
  const index = original.findIndex((c) => (RESTORE_WAIT_CONTAINERS as readonly string[]).includes(c.name));
  if (index < 0) return unchanged;
  const initContainers = [...original];
  const warnings: string[] = [];
  let container = initContainers[index]!;
  if (index > 0) {
    const before = initContainers.slice(0, index).map((c) => c.name);
    initContainers.splice(index, 1);
    initContainers.unshift(container);
    warnings.push(`moved ${container.name} before init containers ${before.join(", ")}: anything before it can deadlock the restore (velero#3008)`);
  }
  const podContext = pod.spec?.securityContext;
  const nonRoot = container.securityContext?.runAsNonRoot ?? podContext?.runAsNonRoot ?? false;
  // A pod-level runAsUser applies to restore-wait too; only without any numeric uid must one be set.
  if (nonRoot && typeof container.securityContext?.runAsUser !== "number" && typeof podContext?.runAsUser !== "number") {
    const uid = DEFAULT_RESTORE_WAIT_UID;
    container = { ...container, securityContext: { ...(container.securityContext ?? {}), runAsUser: uid } };
    initContainers[0] = container;
    warnings.push(`set ${container.name} runAsUser=${uid}: runAsNonRoot needs a numeric user and Velero's image user is not (velero#9985)`);
  }
  return warnings.length > 0 ? { initContainers, warnings } : unchanged;
}
