import { globMatches } from "../policy/selectors.js";
import type { PolicySpec } from "../policy/types.js";
import { splitVolumeList } from "../velero/annotations.js";
import { neverBackedUpReason, volumeSourceOf, type VolumeSource } from "../velero/volumes.js";
import type { Pod } from "./pod.js";

export interface PodVolume {
  name: string;
  source: VolumeSource;
  mounted: boolean;
  blockOnly: boolean;
}

/** The pod's volumes in order, with what Velero's per-volume checks look at. */
export function describeVolumes(pod: Pod): PodVolume[] {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const mounted = new Set(containers.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  const devices = new Set(containers.flatMap((c) => (c.volumeDevices ?? []).map((d) => d.name)));
  return (pod.spec?.volumes ?? [])
    .filter((v) => typeof v?.name === "string")
    .map((v) => ({ name: v.name, source: volumeSourceOf(v), mounted: mounted.has(v.name), blockOnly: devices.has(v.name) && !mounted.has(v.name) }));
}

/** Why Velero's file-system backup cannot take this volume of this pod, or undefined if it can. */
function unbackupableReason(volume: PodVolume): string | undefined {
  return (
    neverBackedUpReason(volume.name, volume.source) ??
    (volume.blockOnly ? "it is a block volume (volumeDevices), which file-system backup skips" : undefined) ??
    (volume.mounted ? undefined : "no container mounts it, so Velero skips it")
  );
}

/**
 * Volumes the policy selects, in pod order: source type allowed, name matching an include and no
 * exclude, and backable at all (mounted, not block-only, not a type Velero never backs up).
 */
export function selectBackupVolumes(podVolumes: readonly PodVolume[], volumes: PolicySpec["volumes"]): string[] {
  return podVolumes
    .filter(
      (v) =>
        (volumes.sources as readonly string[]).includes(v.source) &&
        volumes.include.some((p) => globMatches(p, v.name)) &&
        !volumes.exclude.some((p) => globMatches(p, v.name)) &&
        unbackupableReason(v) === undefined,
    )
    .map((v) => v.name);
}

/** For opt-out clusters: every volume not selected, leaving out those Velero never backs up anyway. */
export function volumesToExclude(podVolumes: readonly PodVolume[], selected: readonly string[]): string[] {
  return podVolumes
    .filter((v) => !selected.includes(v.name) && neverBackedUpReason(v.name, v.source) === undefined)
    .map((v) => v.name);
}

export interface CanonicalList {
  names: string[];
  warnings: string[];
}

/**
 * A user-written volume list in the form Velero reads correctly: entries trimmed, empty and
 * duplicate entries dropped, names that are not pod volumes (or that Velero cannot back up, for
 * the opt-in list) dropped. Each change that alters meaning gets a warning.
 */
export function canonicaliseVolumeList(podVolumes: readonly PodVolume[], annotation: string, value: string, optIn: boolean): CanonicalList {
  const volumes = new Map(podVolumes.map((v) => [v.name, v]));
  const names: string[] = [];
  const warnings: string[] = [];
  for (const raw of splitVolumeList(value)) {
    const name = raw.trim();
    if (name === "") continue;
    if (name !== raw) warnings.push(`${annotation}: trimmed spaces around "${name}" (Velero would look for a volume named "${raw}")`);
    if (names.includes(name)) {
      warnings.push(`${annotation}: dropped duplicate "${name}"`);
      continue;
    }
    const volume = volumes.get(name);
    if (!volume) {
      warnings.push(`${annotation}: dropped "${name}": not a volume of this pod (list spec.volumes names, not PVC names)`);
      continue;
    }
    const reason = optIn ? unbackupableReason(volume) : neverBackedUpReason(volume.name, volume.source);
    if (reason) {
      warnings.push(`${annotation}: dropped "${name}": ${reason}`);
      continue;
    }
    names.push(name);
  }
  return { names, warnings };
}
