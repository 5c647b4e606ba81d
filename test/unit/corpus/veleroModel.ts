import type { Pod } from "../../../src/pods/pod.js";

/**
 * What Velero 1.18's file-system backup takes from a Running pod, written here from Velero's source
 * and independent of app-snapshots' own rules (so the corpus checks them, not restates them):
 *
 * - internal/volumehelper/volume_policy_helper.go, shouldIncludeVolumeInBackup: never hostPath,
 *   secret, configMap, projected, downwardAPI, nor a name starting with "default-token".
 * - same file, shouldPerformFSBackupLegacy: opt-in (defaultVolumesToFsBackup false/unset) takes a volume
 *   whose name is an entry of backup.velero.io/backup-volumes; opt-out takes every volume whose name is
 *   not an entry of backup.velero.io/backup-volumes-excludes. pkg/util/podvolume/pod_volume.go
 *   GetVolumesToBackup/GetVolumesToExclude: the value split on "," with no trimming, exact match.
 * - pkg/podvolume/backupper.go, BackupPodVolumes: skips volumes listed in a regular container's
 *   volumeDevices (block), and volumes no regular container (spec.containers; init containers and
 *   native sidecars do not count) mounts.
 *
 * No resource policy is assumed (the Backups in the corpus set none).
 */
export type VeleroMode = "opt-in" | "opt-out";

const NEVER = ["hostPath", "secret", "configMap", "projected", "downwardAPI"];

export function veleroTakes(pod: Pod, mode: VeleroMode): string[] {
  const annotations = pod.metadata?.annotations ?? {};
  const listed = (key: string) => (annotations[key] ?? "").split(",");
  const optIn = listed("backup.velero.io/backup-volumes");
  const optOut = listed("backup.velero.io/backup-volumes-excludes");
  const containers = pod.spec?.containers ?? [];
  const mounted = new Set(containers.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  const devices = new Set(containers.flatMap((c) => (c.volumeDevices ?? []).map((d) => d.name)));
  return (pod.spec?.volumes ?? [])
    .filter((v) => !NEVER.some((source) => v[source] !== undefined) && !v.name.startsWith("default-token"))
    .filter((v) => (mode === "opt-in" ? optIn.includes(v.name) : !optOut.includes(v.name)))
    .filter((v) => !devices.has(v.name) && mounted.has(v.name))
    .map((v) => v.name);
}

/** Is this volume a memory-backed emptyDir (tmpfs)? */
export function isMemoryBacked(pod: Pod, volume: string): boolean {
  const found = pod.spec?.volumes?.find((v) => v.name === volume) as { emptyDir?: { medium?: string } } | undefined;
  return found?.emptyDir?.medium === "Memory";
}
