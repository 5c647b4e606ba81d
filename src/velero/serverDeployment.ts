import { parseGoBool } from "./annotations.js";

/** What app-snapshots reads from the Velero server's Deployment: its container's image and flags. */
export type Container = { name?: string; image?: string; command?: unknown; args?: unknown };

/** The Velero server's container: the Deployment named velero, or labelled as Velero's by `velero install` or its Helm chart. */
export function veleroContainerOf(object: { metadata?: { name?: string; labels?: Record<string, string> }; spec?: unknown }): Container | undefined {
  const labels = object.metadata?.labels ?? {};
  const isVelero = object.metadata?.name === "velero" || labels.component === "velero" || labels["app.kubernetes.io/name"] === "velero";
  if (!isVelero) return undefined;
  const containers = (object.spec as { template?: { spec?: { containers?: Container[] } } } | undefined)?.template?.spec?.containers ?? [];
  return containers.find((c) => c.name === "velero") ?? containers[0];
}

/** The container's command and args as strings (anything else is dropped). */
export function argvOf(container: Container | undefined): string[] {
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []);
  return [...strings(container?.command), ...strings(container?.args)];
}

/** Velero's default for --default-backup-storage-location (pkg/cmd/server/config/config.go). */
export const SERVER_DEFAULT_LOCATION = "default";

/**
 * The Velero server's --default-backup-storage-location (a pflag string: --flag=value or --flag value; the last
 * wins), or undefined when not given. A Backup without storageLocation goes to this location when no location is
 * marked default (backup_controller.go prepareBackupRequest), and the server marks it default at start.
 */
export function defaultBackupLocationFlag(argv: readonly string[]): string | undefined {
  let result: string | undefined;
  for (const [i, arg] of argv.entries()) {
    const match = /^--?default-backup-storage-location(?:=(.*))?$/.exec(arg);
    if (match) result = match[1] ?? argv[i + 1] ?? result;
  }
  return result;
}

/**
 * The Velero server's --default-volumes-to-fs-backup from its container's command and args, or
 * undefined when not given (Velero's default is false). Velero's flags are pflag booleans: the bare
 * flag means true, --flag=<value> is read with strconv.ParseBool (pkg/cmd/server/config).
 */
export function defaultVolumesToFsBackupFlag(argv: readonly string[]): boolean | undefined {
  let result: boolean | undefined;
  for (const arg of argv) {
    const match = /^--?default-volumes-to-fs-backup(?:=(.*))?$/.exec(arg);
    if (!match) continue;
    result = match[1] === undefined ? true : (parseGoBool(match[1]) ?? result);
  }
  return result;
}
