import { globMatches } from "../policy/glob.js";
import type { PolicySpec } from "../policy/types.js";
import { splitVolumeList } from "../velero/annotations.js";
import { neverBackedUpReason, volumeSourceOf, type VolumeSource } from "../velero/volumes.js";
import type { Pod } from "./pod.js";

export interface PodVolume {
  name: string;
  source: VolumeSource;
  claimName: string | undefined;
  /** Mounted by a regular container: the only mounts Velero looks at. */
  mounted: boolean;
  /** Mounted by init containers only. */
  initOnly: boolean;
  /** Attached as a block device by a regular container. */
  block: boolean;
  /** emptyDir with medium Memory (tmpfs: /dev/shm and the like). */
  memory: boolean;
  /** A CSI volume of the Secrets Store CSI driver: secrets fetched from an external store. */
  secretsStore: boolean;
}

const SECRETS_STORE_DRIVER = "secrets-store.csi.k8s.io";

/** The pod's volumes in order, with what Velero's per-volume checks look at. */
export function describeVolumes(pod: Pod): PodVolume[] {
  // Velero collects mounts and devices from spec.containers only (pkg/podvolume/backupper.go,
  // BackupPodVolumes: `for _, container := range pod.Spec.Containers`), so a volume only init
  // containers mount is skipped as "not mounted by any container".
  const containers = pod.spec?.containers ?? [];
  const mounted = new Set(containers.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  const devices = new Set(containers.flatMap((c) => (c.volumeDevices ?? []).map((d) => d.name)));
  const initMounted = new Set((pod.spec?.initContainers ?? []).flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  return (pod.spec?.volumes ?? [])
    .filter((v) => typeof v?.name === "string")
    .map((v) => {
      const source = volumeSourceOf(v);
      const claimName = (v.persistentVolumeClaim as { claimName?: unknown } | undefined)?.claimName;
      return {
        name: v.name,
        source,
        claimName: typeof claimName === "string" ? claimName : undefined,
        mounted: mounted.has(v.name),
        initOnly: !mounted.has(v.name) && initMounted.has(v.name),
        block: devices.has(v.name),
        memory: source === "emptyDir" && (v.emptyDir as { medium?: unknown } | null)?.medium === "Memory",
        secretsStore: source === "csi" && (v.csi as { driver?: unknown } | null)?.driver === SECRETS_STORE_DRIVER,
      };
    });
}

/**
 * Why Velero's file-system backup never takes this volume of this pod, in either mode, or
 * undefined if it can. The order is Velero's: source type first (internal/volumehelper), then
 * block devices, then mounts (pkg/podvolume/backupper.go BackupPodVolumes).
 */
export function veleroSkipReason(volume: PodVolume): string | undefined {
  const never = neverBackedUpReason(volume.name, volume.source);
  if (never) return never;
  if (volume.block) return "a block volume (volumeDevices): file-system backup skips it";
  if (volume.initOnly) return "mounted only by init containers: Velero looks at regular containers' mounts only (pkg/podvolume/backupper.go)";
  if (!volume.mounted) return "no container mounts it, so Velero skips it";
  return undefined;
}

/** Why a volume Velero could take is kept out unless a policy or the pod names it, or undefined. */
export function sensitiveReason(volume: PodVolume): string | undefined {
  if (volume.memory) return "memory-backed emptyDir (RAM, like /dev/shm)";
  if (volume.secretsStore) return "CSI secrets-store volume (secrets from an external store, not data)";
  return undefined;
}

export interface VolumeChoice {
  selected: boolean;
  /** Why, for the verdict (and `explain`). */
  why: string;
}

/**
 * The policy's choice for every pod volume: source type allowed, name matching an include and no
 * exclude, and takeable by Velero at all. Memory-backed emptyDirs and secrets-store volumes are
 * taken only when an include names them literally (no wildcard): they are never selected silently.
 */
export function choosePolicyVolumes(podVolumes: readonly PodVolume[], volumes: PolicySpec["volumes"], ref: string): Map<string, VolumeChoice> {
  const choices = new Map<string, VolumeChoice>();
  for (const v of podVolumes) {
    const skip = veleroSkipReason(v);
    const exclude = volumes.exclude.find((p) => globMatches(p, v.name));
    const sensitive = sensitiveReason(v);
    let choice: VolumeChoice;
    if (skip) choice = { selected: false, why: skip };
    else if (!(volumes.sources as readonly string[]).includes(v.source)) choice = { selected: false, why: `its source type ${v.source} is not in the sources of policy ${ref}` };
    else if (exclude !== undefined) choice = { selected: false, why: `matches exclude pattern "${exclude}" of policy ${ref}` };
    else if (sensitive && volumes.include.includes(v.name)) choice = { selected: true, why: `${sensitive}, named in the include list of policy ${ref}` };
    else if (sensitive) choice = { selected: false, why: `${sensitive}: policy ${ref} takes it only when its include list names it (not via a wildcard)` };
    else if (!volumes.include.some((p) => globMatches(p, v.name))) choice = { selected: false, why: `matches no include pattern of policy ${ref}` };
    else choice = { selected: true, why: `selected by policy ${ref}` };
    choices.set(v.name, choice);
  }
  return choices;
}

export interface CanonicalList {
  names: string[];
  warnings: string[];
  /** The value named at least one volume (after trimming): the user meant a non-empty list. */
  hadEntries: boolean;
}

/**
 * A user-written volume list in the form Velero reads correctly: entries trimmed, empty and
 * duplicate entries dropped, claim names replaced by the volume that mounts the claim, other names
 * that are not pod volumes (or that Velero cannot back up, for the opt-in list) dropped. Each
 * change that alters meaning gets a warning.
 */
export function canonicaliseVolumeList(podVolumes: readonly PodVolume[], annotation: string, value: string, optIn: boolean): CanonicalList {
  const volumes = new Map(podVolumes.map((v) => [v.name, v]));
  const byClaim = new Map(podVolumes.filter((v) => v.claimName !== undefined).map((v) => [v.claimName!, v]));
  const names: string[] = [];
  const warnings: string[] = [];
  let hadEntries = false;
  for (const raw of splitVolumeList(value)) {
    let name = raw.trim();
    if (name === "") continue;
    hadEntries = true;
    if (name !== raw) warnings.push(`${annotation}: trimmed spaces around "${name}" (Velero would look for a volume named "${raw}")`);
    if (!volumes.has(name) && byClaim.has(name)) {
      const volume = byClaim.get(name)!;
      warnings.push(`${annotation}: "${name}" is a claim name; replaced by "${volume.name}", the pod volume that mounts it (Velero reads volume names)`);
      name = volume.name;
    }
    if (names.includes(name)) {
      warnings.push(`${annotation}: dropped duplicate "${name}"`);
      continue;
    }
    const volume = volumes.get(name);
    if (!volume) {
      warnings.push(`${annotation}: dropped "${name}": not a volume of this pod (list spec.volumes names, not PVC names)`);
      continue;
    }
    const reason = optIn ? veleroSkipReason(volume) : neverBackedUpReason(volume.name, volume.source);
    if (reason) {
      warnings.push(`${annotation}: dropped "${name}": ${reason}`);
      continue;
    }
    names.push(name);
  }
  return { names, warnings, hadEntries };
}
