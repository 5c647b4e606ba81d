import { namespaceLabels, type ClusterState } from "../admission/state.js";
import { globMatches } from "../policy/glob.js";
import { matchesSelector } from "../policy/selectors.js";
import { policyRef, type Policy } from "../policy/types.js";
import { warn, type Finding } from "./findings.js";
import type { BackupSpec } from "./objects.js";

/**
 * Whether a Backup takes every pod volume not excluded (opt-out) or only the listed ones (opt-in), as
 * prepareBackupRequest decides it (pkg/controller/backup_controller.go): the field, else a true
 * defaultVolumesToRestic, else the server's --default-volumes-to-fs-backup (false by default).
 */
export function backupTakesEveryVolume(spec: BackupSpec, serverDefault: boolean | undefined): boolean {
  if (spec.defaultVolumesToRestic === true) return true;
  return spec.defaultVolumesToFsBackup ?? serverDefault ?? false;
}

/** Velero adds namespaces with this label to every Backup's excludedNamespaces (backup_controller.go, prepareBackupRequest). */
const EXCLUDE_FROM_BACKUP_LABEL = "velero.io/exclude-from-backup";

/** Namespaces the state knows (labelled ones and those holding policies) that the Backup's namespace filters take. */
function coveredNamespaces(spec: BackupSpec, state: ClusterState): string[] {
  const known = new Set([...state.namespaces.keys(), ...state.policiesByNamespace.keys()]);
  const included = spec.includedNamespaces?.length ? spec.includedNamespaces : ["*"];
  const excluded = spec.excludedNamespaces ?? [];
  const matches = (patterns: readonly string[], ns: string) => patterns.some((p) => globMatches(p, ns));
  return [...known].filter((ns) => matches(included, ns) && !matches(excluded, ns) && namespaceLabels(state, ns)[EXCLUDE_FROM_BACKUP_LABEL] !== "true").sort();
}

/** The policies whose mode contradicts the Backup's, in the namespaces it covers. */
function contradictingPolicies(spec: BackupSpec, state: ClusterState, contradicting: "OptIn" | "OptOut"): Policy[] {
  const found = new Map<string, Policy>();
  for (const ns of coveredNamespaces(spec, state)) {
    const labels = namespaceLabels(state, ns);
    const policies: Policy[] = [...(state.policiesByNamespace.get(ns) ?? []), ...state.clusterPolicies.filter((p) => matchesSelector(p.spec.namespaceSelector, labels))];
    for (const policy of policies) if (policy.spec.volumes.mode === contradicting) found.set(policyRef(policy), policy);
  }
  return [...found.values()];
}

const listed = (policies: Policy[]) => {
  const names = policies.map(policyRef);
  return names.length <= 3 ? names.join(", ") : `${names.slice(0, 3).join(", ")} and ${names.length - 3} more`;
};

/**
 * A Backup (or Schedule template) whose file-system-backup mode contradicts the policies of the
 * namespaces it covers. Pods the webhook annotated carry both backup-volumes and
 * backup-volumes-excludes, so they get the policy's selection in either mode; pods it did not annotate
 * (created before the policy, or not matched by its podSelector) follow the Backup's mode alone.
 */
export function fsBackupModeFindings(base: string, spec: BackupSpec, veleroNamespace: string, state: ClusterState): Finding[] {
  const everyVolume = backupTakesEveryVolume(spec, state.velero.defaultVolumesToFsBackup.get(veleroNamespace));
  const field = spec.defaultVolumesToFsBackup !== undefined ? `${base}.defaultVolumesToFsBackup` : base;
  if (everyVolume) {
    const optIn = contradictingPolicies(spec, state, "OptIn");
    if (optIn.length === 0) return [];
    return [
      warn(field, `backs up every volume (opt-out), but OptIn policies cover its namespaces: ${listed(optIn)}`),
      warn(field, "pods the webhook annotated keep their policy's selection; others (created before the policy, or unmatched) get ALL volumes backed up"),
    ];
  }
  const optOut = contradictingPolicies(spec, state, "OptOut");
  if (optOut.length === 0) return [];
  return [
    warn(field, `backs up only listed volumes (opt-in), but OptOut policies cover its namespaces: ${listed(optOut)}`),
    warn(field, "pods the webhook annotated keep their policy's selection; others (created before the policy, or unmatched) get NO file-system backup"),
  ];
}
