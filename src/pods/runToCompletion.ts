import type { Pod } from "./pod.js";

/**
 * Why Velero never takes this pod's volumes, or undefined. Velero backs up the volumes of Running
 * pods only (pkg/podvolume/backupper.go, BackupPodVolumes: kube.IsPodRunning, else every volume is
 * skipped), so a pod that runs to completion (a Job's or CronJob's pod, restartPolicy Never or
 * OnFailure) is almost always Succeeded or Failed when a backup finds it.
 */
export function runToCompletionReason(pod: Pod): string | undefined {
  const owner = (pod.metadata?.ownerReferences as Array<{ kind?: string; controller?: boolean }> | undefined)?.find((o) => o.controller);
  if (owner?.kind === "Job") return "a Job pod: Velero backs up volumes of Running pods only (pkg/podvolume/backupper.go), and a Job pod is Completed when a backup finds it";
  const policy = pod.spec?.restartPolicy;
  if (policy === "Never" || policy === "OnFailure") {
    return `a run-to-completion pod (restartPolicy ${policy}, as in a Job or CronJob): Velero backs up volumes of Running pods only (pkg/podvolume/backupper.go)`;
  }
  return undefined;
}
