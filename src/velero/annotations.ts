/**
 * Every Velero pod annotation app-snapshots reads or writes, and how Velero parses each one
 * (velero pkg/util/podvolume and internal/hook). Admission code asks this module; it never
 * spells an annotation name itself.
 */

/** Opt-in list of pod volume names for file-system backup. */
export const BACKUP_VOLUMES = "backup.velero.io/backup-volumes";
/** Opt-out list, honoured when Velero runs with default-volumes-to-fs-backup. */
export const BACKUP_VOLUMES_EXCLUDES = "backup.velero.io/backup-volumes-excludes";

/** The label Velero puts on every restored object (with velero.io/backup-name). */
export const RESTORE_NAME_LABEL = "velero.io/restore-name";

/** The init container Velero prepends to restored pods with volume data; `restic-wait` before 1.10. */
export const RESTORE_WAIT_CONTAINERS = ["restore-wait", "restic-wait"] as const;

export type HookPhase = "preBackup" | "postBackup" | "postRestore" | "initRestore";

export const HOOK_PREFIX: Record<HookPhase, string> = {
  preBackup: "pre.hook.backup.velero.io/",
  postBackup: "post.hook.backup.velero.io/",
  postRestore: "post.hook.restore.velero.io/",
  initRestore: "init.hook.restore.velero.io/",
};
/** Un-prefixed backup hook keys, used by Velero as the pre hook when no `pre.` command exists. */
export const LEGACY_BACKUP_HOOK_PREFIX = "hook.backup.velero.io/";

/** The keys Velero reads per phase; anything else under the prefix is ignored by Velero. */
export const HOOK_KEYS: Record<HookPhase, readonly string[]> = {
  preBackup: ["container", "command", "on-error", "timeout"],
  postBackup: ["container", "command", "on-error", "timeout"],
  postRestore: ["container", "command", "on-error", "exec-timeout", "wait-timeout", "wait-for-ready"],
  initRestore: ["container-image", "container-name", "command", "timeout"],
};

export const HOOK_PHASES: readonly HookPhase[] = ["preBackup", "postBackup", "postRestore", "initRestore"];

export const PHASE_TITLE: Record<HookPhase, string> = {
  preBackup: "pre-backup",
  postBackup: "post-backup",
  postRestore: "post-restore",
  initRestore: "init-restore",
};

/** The annotations of one hook phase present on a pod, keyed by the part after the prefix. */
export function hookAnnotationsOf(annotations: Record<string, string>, phase: HookPhase): Record<string, string> {
  const prefix = HOOK_PREFIX[phase];
  const found: Record<string, string> = {};
  for (const [key, value] of Object.entries(annotations)) if (key.startsWith(prefix)) found[key.slice(prefix.length)] = value;
  return found;
}

/**
 * Velero splits the list on "," with no trimming and no de-duplication (GetVolumesToBackup), so
 * "a, b" names the volumes "a" and " b". This returns the raw entries exactly as Velero sees them.
 */
export function splitVolumeList(value: string): string[] {
  return value.split(",");
}

/** The canonical form we write: comma-separated, no spaces. */
export function formatVolumeList(names: readonly string[]): string {
  return names.join(",");
}

/**
 * Velero's parseStringToCommand: a value starting with "[" is JSON-decoded into []string; if that
 * fails, or for any other value, the whole string is ONE argv element (no shell, no splitting).
 */
export function parseHookCommand(value: string): { argv: string[]; decodedAsJson: boolean } {
  if (value.startsWith("[")) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) return { argv: parsed, decodedAsJson: true };
    } catch {
      // falls through to Velero's fallback
    }
  }
  return { argv: [value], decodedAsJson: false };
}

/** We always write commands as JSON arrays, so they mean exactly the argv the policy gives. */
export function formatHookCommand(argv: readonly string[]): string {
  return JSON.stringify(argv);
}

export const ON_ERROR_VALUES = ["Continue", "Fail"] as const;
export type OnError = (typeof ON_ERROR_VALUES)[number];

/** Go's strconv.ParseBool, which Velero uses for wait-for-ready. */
export function parseGoBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}
