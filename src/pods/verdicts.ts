import { BACKUP_VOLUMES, BACKUP_VOLUMES_EXCLUDES, splitVolumeList } from "../velero/annotations.js";
import { veleroSkipReason, type PodVolume } from "./volumes.js";
import type { VolumeVerdict } from "./volumeVerdict.js";

export interface VerdictContext {
  /** Set for pods Velero never backs up as a whole (Job pods). */
  podReason: string | undefined;
  /** Why each volume is in or out, when a policy or the pod's own lists decided. */
  why: ReadonlyMap<string, string>;
  /** Why, for volumes `why` does not cover ("no policy applies", ...). */
  fallback: string;
  /** Claims of the pod's namespace whose data Velero skips (hostPath PersistentVolumes), by claim name. */
  hostPathClaims?: ReadonlyMap<string, string>;
}

/**
 * What Velero's file-system backup does with each volume of the admitted pod, in each mode, read
 * from the final annotations exactly as Velero reads them (split on ",", untrimmed:
 * pkg/util/podvolume GetVolumesToBackup / GetVolumesToExclude).
 */
export function volumeVerdicts(podVolumes: readonly PodVolume[], annotations: Readonly<Record<string, string>>, context: VerdictContext): VolumeVerdict[] {
  const include = annotations[BACKUP_VOLUMES] === undefined ? [] : splitVolumeList(annotations[BACKUP_VOLUMES]);
  const exclude = annotations[BACKUP_VOLUMES_EXCLUDES] === undefined ? [] : splitVolumeList(annotations[BACKUP_VOLUMES_EXCLUDES]);
  return podVolumes.map((volume) => {
    const base = { name: volume.name, source: volume.source, ...(volume.claimName !== undefined ? { claimName: volume.claimName } : {}) };
    const claimSkipped = volume.claimName === undefined ? undefined : context.hostPathClaims?.get(volume.claimName);
    const never = context.podReason ?? veleroSkipReason(volume) ?? (claimSkipped ? `Velero's file-system backup skips it: ${claimSkipped}` : undefined);
    if (never !== undefined) return { ...base, optIn: { backedUp: false, reason: never }, optOut: { backedUp: false, reason: never } };
    const why = context.why.get(volume.name) ?? context.fallback;
    const listed = include.includes(volume.name);
    const excluded = exclude.includes(volume.name);
    // Velero matches entries exactly: " data" is not "data".
    const spaced = (list: string[]) => list.find((entry) => entry !== volume.name && entry.trim() === volume.name);
    const state = (inList: boolean, list: string[], key: string) => {
      const near = inList ? undefined : spaced(list);
      return near !== undefined ? `listed in ${key} only as "${near}", which Velero does not match (spaces)` : `${inList ? "listed" : "not listed"} in ${key}`;
    };
    return {
      ...base,
      optIn: { backedUp: listed, reason: `${state(listed, include, BACKUP_VOLUMES)}: ${why}` },
      optOut: { backedUp: !excluded, reason: `${state(excluded, exclude, BACKUP_VOLUMES_EXCLUDES)}: ${why}` },
    };
  });
}
