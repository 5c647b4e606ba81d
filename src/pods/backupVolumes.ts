import type { PolicySpec } from "../policy/types.js";
import { BACKUP_VOLUMES, BACKUP_VOLUMES_EXCLUDES, formatVolumeList } from "../velero/annotations.js";
import { canonicaliseVolumeList, choosePolicyVolumes, sensitiveReason, veleroSkipReason, type PodVolume } from "./volumes.js";

export interface VolumeAnnotations {
  warnings: string[];
  /** Per volume Velero could take: why it is in or out of the backup, for the verdicts. */
  why: Map<string, string>;
  /** The annotations written from the policy (not the user's), as MANAGED_ANNOTATION groups. */
  managed: string[];
}

const SHORT = { [BACKUP_VOLUMES]: "backup-volumes", [BACKUP_VOLUMES_EXCLUDES]: "backup-volumes-excludes" } as const;

/**
 * Writes both Velero volume lists into `annotations` (mutated in place) so the pod gets the same
 * volumes whether a Backup runs in opt-in mode (Velero reads only backup-volumes) or opt-out mode
 * (only backup-volumes-excludes; internal/volumehelper shouldPerformFSBackupLegacy): the
 * selection S in one, every other volume Velero could take in the other. S is the user's own
 * list when the pod has one (canonicalised; claim names mapped to volumes), else the policy's.
 * `annotations` must not hold the lists app-snapshots wrote earlier (decide.ts strips them).
 */
export function writeVolumeAnnotations(podVolumes: readonly PodVolume[], annotations: Record<string, string>, volumes: PolicySpec["volumes"], ref: string): VolumeAnnotations {
  const choices = choosePolicyVolumes(podVolumes, volumes, ref);
  const takeable = podVolumes.filter((v) => veleroSkipReason(v) === undefined).map((v) => v.name);
  const policySelected = takeable.filter((name) => choices.get(name)!.selected);
  const warnings: string[] = [];
  const why = new Map([...choices].map(([name, choice]) => [name, choice.why]));
  const managed: string[] = [];

  // A user list counts when it names something usable; a non-empty list that names nothing
  // usable must not turn into "back up nothing": the policy's selection applies instead.
  const userList = (key: typeof BACKUP_VOLUMES | typeof BACKUP_VOLUMES_EXCLUDES): string[] | undefined => {
    const value = annotations[key];
    if (value === undefined) return undefined;
    const canonical = canonicaliseVolumeList(podVolumes, key, value, key === BACKUP_VOLUMES);
    warnings.push(...canonical.warnings);
    if (canonical.hadEntries && canonical.names.length === 0) {
      warnings.push(`${key}: no entry of "${value}" names a volume Velero can back up; applied policy ${ref} instead`);
      delete annotations[key];
      return undefined;
    }
    annotations[key] = formatVolumeList(canonical.names);
    return canonical.names;
  };
  const include = userList(BACKUP_VOLUMES);
  const exclude = userList(BACKUP_VOLUMES_EXCLUDES);
  const write = (key: typeof BACKUP_VOLUMES | typeof BACKUP_VOLUMES_EXCLUDES, names: string[]) => {
    if (names.length === 0) return;
    annotations[key] = formatVolumeList(names);
    managed.push(SHORT[key]);
  };
  const own = (key: string) => `chosen by the pod's own ${key} annotation`;

  if (include !== undefined && exclude !== undefined) {
    // Both written by the user: theirs entirely. Say where Velero's two modes will differ.
    const differ = takeable.filter((name) => include.includes(name) === exclude.includes(name));
    if (differ.length > 0) {
      warnings.push(`${BACKUP_VOLUMES} and ${BACKUP_VOLUMES_EXCLUDES} disagree on ${differ.join(", ")}: the result depends on the Backup's defaultVolumesToFsBackup`);
    }
    for (const name of takeable) why.set(name, "chosen by the pod's own volume annotations");
  } else if (include !== undefined) {
    write(BACKUP_VOLUMES_EXCLUDES, takeable.filter((name) => !include.includes(name)));
    for (const name of takeable) why.set(name, own(BACKUP_VOLUMES));
  } else if (exclude !== undefined) {
    // The user's opt-out list: everything else, except what is never taken silently.
    const sensitive = new Map(podVolumes.map((v) => [v.name, sensitiveReason(v)]));
    const selected = takeable.filter((name) => !exclude.includes(name) && (choices.get(name)!.selected || sensitive.get(name) === undefined));
    const added = takeable.filter((name) => !exclude.includes(name) && !selected.includes(name));
    if (added.length > 0) {
      annotations[BACKUP_VOLUMES_EXCLUDES] = formatVolumeList([...exclude, ...added]);
      for (const name of added) warnings.push(`${BACKUP_VOLUMES_EXCLUDES}: added "${name}", a ${sensitive.get(name)}: never backed up unless named; list it in ${BACKUP_VOLUMES} to back it up`);
    }
    write(BACKUP_VOLUMES, selected);
    for (const name of takeable) if (!added.includes(name)) why.set(name, own(BACKUP_VOLUMES_EXCLUDES));
  } else {
    write(BACKUP_VOLUMES, policySelected);
    write(BACKUP_VOLUMES_EXCLUDES, takeable.filter((name) => !policySelected.includes(name)));
  }

  if (include !== undefined) {
    const missing = policySelected.filter((name) => !include.includes(name));
    if (missing.length > 0) warnings.push(`pod sets ${BACKUP_VOLUMES} itself; policy ${ref} would also back up: ${missing.join(", ")}`);
  } else if (exclude !== undefined) {
    const excluded = exclude.filter((name) => policySelected.includes(name));
    if (excluded.length > 0) warnings.push(`pod sets ${BACKUP_VOLUMES_EXCLUDES} itself; it excludes volumes policy ${ref} selects: ${excluded.join(", ")}`);
  }
  return { warnings, why, managed };
}
