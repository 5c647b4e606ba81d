import { describe, type Finding } from "../velero/findings.js";
import { validateBackup, validateRestore, validateSchedule } from "../velero/backupRules.js";
import { fsBackupModeFindings } from "../velero/fsBackupMode.js";
import { validateLocation, validateLocationDelete, validateLocationUpdate } from "../velero/locationRules.js";
import { backupSchema, backupStorageLocationSchema, namespaceOf, readVeleroObject, refOf, restoreSchema, scheduleSchema } from "../velero/objects.js";
import type { Verdict } from "./admit.js";
import type { AdmissionRequest } from "./review.js";
import type { ClusterState } from "./state.js";

export const VELERO_KINDS = ["BackupStorageLocation", "Backup", "Schedule", "Restore"] as const;

/** Phases in which Velero still starts a Backup or Restore as new work (the chart's CEL lists the same). */
export const NEW_WORK_PHASES = ["", "New", "Queued", "ReadyToStart"];

export function isVeleroRequest(request: AdmissionRequest): boolean {
  return request.kind.group === "velero.io" && (VELERO_KINDS as readonly string[]).includes(request.kind.kind);
}

/** Objects are judged in the request's namespace, also when the object itself does not name one. */
function withRequestNamespace<T>(object: T, request: AdmissionRequest): T {
  const metadata = (object as { metadata?: { namespace?: string } } | null)?.metadata;
  if (!request.namespace || typeof object !== "object" || object === null || typeof metadata?.namespace === "string") return object;
  return { ...object, metadata: { ...(metadata ?? {}), namespace: request.namespace } };
}

const specOf = (o: unknown) => JSON.stringify((o as { spec?: unknown } | null)?.spec ?? null);
const withoutDefault = (o: unknown) => {
  const spec = { ...((o as { spec?: Record<string, unknown> } | null)?.spec ?? {}) };
  delete spec.default;
  return JSON.stringify(spec);
};

/** The findings for one request, before UPDATE leniency. */
function findingsFor(request: AdmissionRequest, raw: unknown, state: ClusterState): Finding[] {
  const velero = state.velero;
  const object = withRequestNamespace(raw, request);
  switch (request.kind.kind) {
    case "BackupStorageLocation":
      return validateLocation(readVeleroObject(backupStorageLocationSchema, object), velero);
    case "Backup": {
      const backup = readVeleroObject(backupSchema, object);
      return [...validateBackup(backup, velero), ...fsBackupModeFindings("spec", backup.spec ?? {}, namespaceOf(backup), state)];
    }
    case "Schedule": {
      const schedule = readVeleroObject(scheduleSchema, object);
      return [...validateSchedule(schedule, velero), ...fsBackupModeFindings("spec.template", schedule.spec?.template ?? {}, namespaceOf(schedule), state)];
    }
    case "Restore":
      return validateRestore(readVeleroObject(restoreSchema, object), velero);
    default:
      return [];
  }
}

/**
 * Requests that are Velero's own, which pass unjudged (the ValidatingWebhookConfiguration's
 * matchConditions skip the same ones, so the apiserver does not even call us for them):
 * - any request by Velero's ServiceAccount;
 * - a Backup or Restore created with a status.phase that is not new work: backup sync creates the
 *   Backups it finds in a location already Completed (pkg/controller/backup_sync_controller.go), and
 *   Velero starts only Backups in "", New (backup_queue_controller.go), Queued or ReadyToStart
 *   (backup_controller.go) and Restores in "" or New (restore_controller.go);
 * - an UPDATE that leaves spec as it was: Velero's CRDs have no status subresource, so every status
 *   write is an UPDATE of the whole object.
 */
export function isVelerosOwn(request: AdmissionRequest, serviceAccounts: readonly string[]): boolean {
  const username = request.userInfo?.username;
  if (username !== undefined && serviceAccounts.includes(username)) return true;
  const kind = request.kind.kind;
  if (request.operation === "CREATE" && (kind === "Backup" || kind === "Restore")) {
    const phase = (request.object as { status?: { phase?: unknown } } | null)?.status?.phase;
    if (typeof phase === "string" && !NEW_WORK_PHASES.includes(phase)) return true;
  }
  return request.operation === "UPDATE" && request.object !== undefined && request.oldObject !== undefined && specOf(request.object) === specOf(request.oldObject);
}

/**
 * Validates Velero's own objects. Only changes a person makes are judged (isVelerosOwn), and an
 * UPDATE never fails for a problem the object already had, so Velero can always keep updating what
 * exists.
 */
export function admitVelero(request: AdmissionRequest, state: ClusterState): Verdict {
  const kind = request.kind.kind;
  if (isVelerosOwn(request, state.velero.serviceAccounts)) return { allowed: true, warnings: [] };
  let findings: Finding[] = [];
  if (request.operation === "DELETE") {
    if (kind === "BackupStorageLocation" && request.oldObject) {
      findings = validateLocationDelete(readVeleroObject(backupStorageLocationSchema, withRequestNamespace(request.oldObject, request)), state.velero);
    }
  } else if (request.operation === "CREATE") {
    if (request.object) findings = findingsFor(request, request.object, state);
  } else if (request.operation === "UPDATE" && kind !== "Restore" && request.object && request.oldObject) {
    // Velero itself flips spec.default on older locations (ensureSingleDefaultBSL); never block that.
    if (kind === "BackupStorageLocation" && withoutDefault(request.object) === withoutDefault(request.oldObject)) return { allowed: true, warnings: [] };
    const before = new Set(findingsFor(request, request.oldObject, state).filter((f) => f.severity === "deny").map(describe));
    findings = findingsFor(request, request.object, state).map((f) =>
      f.severity === "deny" && before.has(describe(f)) ? { ...f, severity: "warn" as const, message: `${f.message} (already so before this change)` } : f,
    );
    if (kind === "BackupStorageLocation") {
      const [now, before] = [request.object, request.oldObject].map((o) => readVeleroObject(backupStorageLocationSchema, withRequestNamespace(o, request)));
      findings.push(...validateLocationUpdate(now!, before!, state.velero));
    }
  }
  const denials = findings.filter((f) => f.severity === "deny");
  const warnings = findings.filter((f) => f.severity === "warn").map(describe);
  if (denials.length === 0) return { allowed: true, warnings };
  const metadata = withRequestNamespace((request.object ?? request.oldObject ?? {}) as { metadata?: { name?: unknown; namespace?: unknown } }, request).metadata;
  // Only strings: a hand-made object's name may be anything (an array nested 100,000 deep overflowed the stack in the message).
  const text = (value: unknown) => (typeof value === "string" ? value : undefined);
  const name = refOf({ metadata: { namespace: text(metadata?.namespace), name: text(metadata?.name) ?? request.name } });
  const refusal = denials.some((f) => f.refusal);
  return {
    allowed: false,
    warnings,
    denial: {
      code: refusal ? 403 : 422,
      reason: refusal ? "Forbidden" : "Invalid",
      message: `app-snapshots: ${kind} ${name} ${request.operation === "DELETE" ? "cannot be deleted" : "is invalid"}: ${denials.map(describe).join("; ")}`,
    },
  };
}
