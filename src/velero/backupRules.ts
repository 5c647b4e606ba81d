import type { VeleroState } from "../admission/state.js";
import { cronProblem } from "./cron.js";
import { parseGoDuration } from "./duration.js";
import { deny, warn, type Finding } from "./findings.js";
import { namespaceOf, type Backup, type BackupSpec, type ExecHook, type Restore, type Schedule } from "./objects.js";
import { backupFilterFindings, restoreFilterFindings } from "./resourceFilters.js";
import { SERVER_DEFAULT_LOCATION } from "./serverDeployment.js";

// The webhook lists Velero's objects from informers; until Velero's CRDs are served and listed (Velero installed
// after app-snapshots), it cannot know what exists and must not deny for it.
const UNLISTED_LOCATIONS = "not checked: the webhook has not listed BackupStorageLocations yet (Velero's CRDs appeared after it started; it lists them within seconds)";
const UNLISTED_BACKUPS = "not checked: the webhook has not listed Backups yet (Velero's CRDs appeared after it started; it lists them within seconds)";

/** The label Velero puts on every Backup a Schedule creates (velero.io/schedule-name, pkg/apis/velero/v1/labels_annotations.go). */
export const SCHEDULE_NAME_LABEL = "velero.io/schedule-name";

const ON_ERROR = ["Continue", "Fail"];

function durationFinding(field: string, value: string | undefined): Finding[] {
  if (value === undefined) return [];
  return parseGoDuration(value) === undefined ? [deny(field, `"${value}" is not a duration (e.g. 30s, 10m, 720h)`)] : [];
}

function execHookFindings(field: string, exec: ExecHook | undefined, durations: Array<"timeout" | "execTimeout" | "waitTimeout">): Finding[] {
  if (!exec) return [];
  const findings: Finding[] = [];
  if (!Array.isArray(exec.command) || exec.command.length === 0) findings.push(deny(`${field}.command`, "must have at least one element"));
  if (exec.onError !== undefined && !ON_ERROR.includes(exec.onError)) findings.push(deny(`${field}.onError`, `must be Continue or Fail (case-sensitive), not "${exec.onError}"`));
  for (const key of durations) findings.push(...durationFinding(`${field}.${key}`, exec[key]));
  return findings;
}

/**
 * The rules shared by a Backup's spec and a Schedule's template. Velero checks a Backup's location
 * the moment it processes it (backup_controller.go, prepareBackupRequest: a missing or ReadOnly
 * location ends it FailedValidation), so for a Backup those are denials; a Schedule only parses its
 * cron expression (schedule_controller.go), and its location can appear or change before it fires.
 */
function backupSpecFindings(kind: "Backup" | "Schedule", base: string, spec: BackupSpec, namespace: string, state: VeleroState, version: string | undefined): Finding[] {
  const findings: Finding[] = [];
  // Each problem as a Backup's denial, or as a Schedule's warning.
  const location = (field: string, backup: string, schedule: string) => findings.push(kind === "Backup" ? deny(field, backup) : warn(field, schedule));
  const locations = state.locations.filter((l) => namespaceOf(l) === namespace);
  const field = `${base}.storageLocation`;
  if (!state.locationsKnown) {
    findings.push(warn(field, UNLISTED_LOCATIONS));
  } else if (spec.storageLocation) {
    const named = locations.find((l) => l.metadata?.name === spec.storageLocation);
    const ref = `BackupStorageLocation ${namespace}/${spec.storageLocation}`;
    if (!named) location(field, `${ref} does not exist`, `${ref} does not exist yet; the Schedule's backups fail until it does`);
    else if (named.spec?.accessMode === "ReadOnly") {
      location(field, `${spec.storageLocation} is ReadOnly; Velero fails backups to it (FailedValidation)`, `${spec.storageLocation} is ReadOnly; the Schedule's backups fail (FailedValidation) while it is`);
    }
  } else {
    const defaults = locations.filter((l) => l.spec?.default === true);
    // With no location marked default, Velero takes the one its server names (--default-backup-storage-location,
    // "default" unless set): backup_controller.go prepareBackupRequest.
    const serverDefault = state.defaultBackupLocation.get(namespace) ?? SERVER_DEFAULT_LOCATION;
    const byServer = serverDefault === "" ? undefined : locations.find((l) => l.metadata?.name === serverDefault);
    if (defaults.length === 0 && byServer) {
      if (byServer.spec?.accessMode === "ReadOnly") location(field, `is not set and ${serverDefault}, the Velero server's default location, is ReadOnly`, `is not set and ${serverDefault}, the Velero server's default location, is ReadOnly; the Schedule's backups fail while it is`);
    } else if (defaults.length === 0) {
      location(
        field,
        `is not set and ${namespace} has no default BackupStorageLocation; set storageLocation or mark a location default: true`,
        `is not set and ${namespace} has no default BackupStorageLocation; the Schedule's backups fail until one is default: true`,
      );
    } else if (defaults.every((l) => l.spec?.accessMode === "ReadOnly")) {
      const name = defaults[0]!.metadata?.name;
      location(field, `is not set and the default location ${name} is ReadOnly`, `is not set and the default location ${name} is ReadOnly; the Schedule's backups fail while it is`);
    }
  }
  // A VolumeSnapshotLocation may be created after the Backup or Schedule that names it (Helm creates
  // custom resources in alphabetical kind order), so a missing one is a warning.
  for (const [i, name] of (spec.volumeSnapshotLocations ?? []).entries()) {
    if (!state.snapshotLocations) {
      findings.push(warn(`${base}.volumeSnapshotLocations[${i}]`, `${name} not checked: app-snapshots does not know this cluster's VolumeSnapshotLocations`));
    } else if (!state.snapshotLocations.has(`${namespace}/${name}`)) {
      findings.push(warn(`${base}.volumeSnapshotLocations[${i}]`, `VolumeSnapshotLocation ${namespace}/${name} does not exist yet; Velero fails a backup naming a missing one`));
    }
  }
  findings.push(...backupFilterFindings(base, spec));
  for (const key of ["ttl", "csiSnapshotTimeout", "itemOperationTimeout"] as const) findings.push(...durationFinding(`${base}.${key}`, spec[key]));
  if (spec.defaultVolumesToRestic !== undefined) {
    findings.push(
      warn(
        `${base}.defaultVolumesToRestic`,
        `is deprecated${version ? ` (this cluster runs Velero ${version}; restic is gone since 1.17)` : ""}; use defaultVolumesToFsBackup, which Velero >= 1.17 backs with kopia`,
      ),
    );
  }
  for (const [i, resource] of (spec.hooks?.resources ?? []).entries()) {
    const field = `${base}.hooks.resources[${i}]`;
    if (!resource.name) findings.push(deny(`${field}.name`, "is required"));
    for (const phase of ["pre", "post"] as const) {
      for (const [j, hook] of (resource[phase] ?? []).entries()) findings.push(...execHookFindings(`${field}.${phase}[${j}].exec`, hook.exec, ["timeout"]));
    }
  }
  return findings;
}

export function validateBackup(backup: Backup, state: VeleroState): Finding[] {
  const namespace = namespaceOf(backup);
  return backupSpecFindings("Backup", "spec", backup.spec ?? {}, namespace, state, state.versions.get(namespace));
}

export function validateSchedule(schedule: Schedule, state: VeleroState): Finding[] {
  const namespace = namespaceOf(schedule);
  const findings: Finding[] = [];
  const expression = schedule.spec?.schedule;
  if (!expression) findings.push(deny("spec.schedule", "is required (a cron expression such as 0 2 * * *, or @every 6h)"));
  else {
    const problem = cronProblem(expression);
    if (problem) findings.push(deny("spec.schedule", `"${expression}" is not a valid schedule: ${problem}`));
  }
  findings.push(...backupSpecFindings("Schedule", "spec.template", schedule.spec?.template ?? {}, namespace, state, state.versions.get(namespace)));
  return findings;
}

export function validateRestore(restore: Restore, state: VeleroState): Finding[] {
  const namespace = namespaceOf(restore);
  const spec = restore.spec ?? {};
  const findings: Finding[] = [];
  if (spec.backupName && spec.scheduleName) findings.push(deny("spec.scheduleName", "and backupName are both set; Velero needs exactly one"));
  if (!spec.backupName && !spec.scheduleName) findings.push(deny("spec.backupName", "or spec.scheduleName is required"));
  if (spec.backupName) {
    const backup = state.backups.find((b) => namespaceOf(b) === namespace && b.metadata?.name === spec.backupName);
    if (!backup && !state.backupsKnown) findings.push(warn("spec.backupName", UNLISTED_BACKUPS));
    else if (!backup) findings.push(deny("spec.backupName", `Backup ${namespace}/${spec.backupName} does not exist (is the location synced? velero backup get)`));
    else if (backup.status?.phase !== "Completed" && backup.status?.phase !== "PartiallyFailed") {
      findings.push(warn("spec.backupName", `Backup ${spec.backupName} is ${backup.status?.phase ?? "not yet processed"}, not Completed or PartiallyFailed; the restore may fail or be incomplete`));
    }
  } else if (spec.scheduleName) {
    // Velero never reads the Schedule: it restores the newest Completed Backup labelled with its name,
    // and fails the Restore at once when there is none (restore_controller.go, validateAndComplete).
    const fromSchedule = state.backups.filter((b) => namespaceOf(b) === namespace && b.metadata?.labels?.[SCHEDULE_NAME_LABEL] === spec.scheduleName);
    if (!state.backupsKnown) findings.push(warn("spec.scheduleName", UNLISTED_BACKUPS));
    else if (!fromSchedule.some((b) => b.status?.phase === "Completed")) {
      findings.push(
        deny(
          "spec.scheduleName",
          `no Completed Backup in ${namespace} is labelled ${SCHEDULE_NAME_LABEL}=${spec.scheduleName}${fromSchedule.length > 0 ? ` (${fromSchedule.length} not completed)` : ""}; Velero fails the Restore at once (is the location synced? velero backup get)`,
        ),
      );
    }
  }
  findings.push(...restoreFilterFindings(spec));
  findings.push(...durationFinding("spec.itemOperationTimeout", spec.itemOperationTimeout));
  for (const [i, resource] of (spec.hooks?.resources ?? []).entries()) {
    const field = `spec.hooks.resources[${i}]`;
    if (!resource.name) findings.push(deny(`${field}.name`, "is required"));
    for (const [j, hook] of (resource.postHooks ?? []).entries()) {
      const hookField = `${field}.postHooks[${j}]`;
      findings.push(...execHookFindings(`${hookField}.exec`, hook.exec, ["execTimeout", "waitTimeout"]));
      if (hook.init) {
        findings.push(...durationFinding(`${hookField}.init.timeout`, hook.init.timeout));
        for (const [k, container] of (hook.init.initContainers ?? []).entries()) {
          const missing = (["name", "image", "command"] as const).filter((key) => (key === "command" ? !container.command?.length : !container[key]));
          if (missing.length > 0) {
            findings.push(deny(`${hookField}.init.initContainers[${k}]`, `needs ${missing.join(", ")}; Velero ends the restore FailedValidation otherwise`));
          }
        }
      }
    }
  }
  return findings;
}
