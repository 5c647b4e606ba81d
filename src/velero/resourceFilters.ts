import { deny, warn, type Finding } from "./findings.js";
import type { BackupSpec, Restore } from "./objects.js";

/**
 * Velero's checks of include/exclude lists (pkg/util/collections/includes_excludes.go,
 * ValidateIncludesExcludes): a Backup or Restore failing one ends FailedValidation at once.
 */
export function includesExcludesProblems(includes: readonly string[] = [], excludes: readonly string[] = []): string[] {
  const problems: string[] = [];
  const included = new Set(includes);
  if (included.size > 1 && included.has("*")) problems.push("includes list must either contain '*' only, or a non-empty list of items");
  if (excludes.includes("*")) problems.push("excludes list cannot contain '*'");
  for (const item of [...new Set(excludes)].sort()) if (included.has(item)) problems.push(`"${item}" is both included and excluded`);
  return problems;
}

/** The same for the cluster- and namespace-scoped lists (ValidateScopedIncludesExcludes). */
export function scopedIncludesExcludesProblems(includes: readonly string[] = [], excludes: readonly string[] = []): string[] {
  const problems: string[] = [];
  const included = new Set(includes);
  const excluded = new Set(excludes);
  if (included.size > 1 && included.has("*")) problems.push("includes list must either contain '*' only, or a non-empty list of items");
  if (excluded.size > 1 && excluded.has("*")) problems.push("excludes list must either contain '*' only, or a non-empty list of items");
  if (included.size > 0 && excluded.has("*")) problems.push("when exclude is '*', include cannot have value");
  for (const item of [...excluded].sort()) if (included.has(item)) problems.push(`"${item}" is both included and excluded`);
  return problems;
}

const listFindings = (field: string, problems: string[]) => problems.map((problem) => deny(field, `${problem}; Velero fails it validating the lists`));

/** Velero refuses both selectors at once (backup_controller.go prepareBackupRequest, restore_controller.go validateAndComplete). */
function selectorFindings(base: string, spec: { labelSelector?: true | undefined; orLabelSelectors?: true | undefined }): Finding[] {
  return spec.labelSelector && spec.orLabelSelectors ? [deny(`${base}.orLabelSelectors`, "and labelSelector are both set; Velero accepts only one of them")] : [];
}

/**
 * A Backup's (or Schedule template's) filters as prepareBackupRequest checks them
 * (pkg/controller/backup_controller.go): the old resource filters (includedResources,
 * excludedResources, includeClusterResources) and the new scoped ones cannot be mixed
 * (oldAndNewFilterParametersUsedTogether); each set's lists are checked; so are the namespaces.
 */
export function backupFilterFindings(base: string, spec: BackupSpec): Finding[] {
  const findings: Finding[] = [...listFindings(`${base}.excludedNamespaces`, includesExcludesProblems(spec.includedNamespaces, spec.excludedNamespaces))];
  const old = (spec.includedResources?.length ?? 0) > 0 || (spec.excludedResources?.length ?? 0) > 0 || (spec.includeClusterResources ?? undefined) !== undefined;
  const scoped = ["includedClusterScopedResources", "excludedClusterScopedResources", "includedNamespaceScopedResources", "excludedNamespaceScopedResources"] as const;
  const usesScoped = scoped.some((key) => (spec[key]?.length ?? 0) > 0);
  if (old && usesScoped) {
    findings.push(
      deny(
        `${base}.includedResources`,
        "mixes the old resource filters (includedResources, excludedResources, includeClusterResources) with the new ones (included/excluded ClusterScoped/NamespaceScoped Resources); Velero refuses both together",
      ),
    );
  } else if (old) {
    findings.push(...listFindings(`${base}.excludedResources`, includesExcludesProblems(spec.includedResources, spec.excludedResources)));
  } else {
    findings.push(...listFindings(`${base}.excludedClusterScopedResources`, scopedIncludesExcludesProblems(spec.includedClusterScopedResources, spec.excludedClusterScopedResources)));
    findings.push(...listFindings(`${base}.excludedNamespaceScopedResources`, scopedIncludesExcludesProblems(spec.includedNamespaceScopedResources, spec.excludedNamespaceScopedResources)));
  }
  findings.push(...selectorFindings(base, spec));
  return findings;
}

/**
 * Resources Velero never restores (nonRestorableResources, pkg/controller/restore_controller.go): it
 * adds them to every Restore's excludedResources and fails a Restore whose includedResources names
 * one of them exactly. Another spelling of one (node, Events) resolves to the same resource and is
 * then silently excluded.
 */
export const NON_RESTORABLE_RESOURCES = [
  "nodes",
  "events",
  "events.events.k8s.io",
  "backups.velero.io",
  "restores.velero.io",
  "resticrepositories.velero.io",
  "csinodes.storage.k8s.io",
  "volumeattachments.storage.k8s.io",
  "backuprepositories.velero.io",
];

/** The plural resource a spelling most likely resolves to: lowercased, a trailing "s" added to the first part. */
function resourceSpelling(text: string): string {
  const [name = "", ...group] = text.toLowerCase().split(".");
  return [name.endsWith("s") ? name : `${name}s`, ...group].join(".");
}

/** Each resource by its full name and by its plural alone (the first resource of that plural wins: events, not events.events.k8s.io). */
const NON_RESTORABLE_BY_NAME = new Map<string, string>();
for (const resource of NON_RESTORABLE_RESOURCES) {
  for (const name of [resource, resource.split(".")[0]!]) if (!NON_RESTORABLE_BY_NAME.has(name)) NON_RESTORABLE_BY_NAME.set(name, resource);
}

/** Velero accepts only these (IsResourcePolicyValid, pkg/util/velero/restore/util.go). */
const EXISTING_RESOURCE_POLICIES = ["none", "update"];

/** A Restore's filters and options as validateAndComplete checks them (pkg/controller/restore_controller.go). */
export function restoreFilterFindings(spec: NonNullable<Restore["spec"]>): Finding[] {
  const findings: Finding[] = [];
  for (const [i, resource] of (spec.includedResources ?? []).entries()) {
    const field = `spec.includedResources[${i}]`;
    if (NON_RESTORABLE_RESOURCES.includes(resource)) findings.push(deny(field, `Velero never restores ${resource} and fails a Restore that includes them`));
    else {
      const meant = NON_RESTORABLE_BY_NAME.get(resourceSpelling(resource));
      if (meant) findings.push(warn(field, `"${resource}" is ${meant}, which Velero never restores: it is excluded from every Restore`));
    }
  }
  findings.push(...listFindings("spec.excludedResources", includesExcludesProblems(spec.includedResources, spec.excludedResources)));
  findings.push(...listFindings("spec.excludedNamespaces", includesExcludesProblems(spec.includedNamespaces, spec.excludedNamespaces)));
  findings.push(...selectorFindings("spec", spec));
  const policy = spec.existingResourcePolicy;
  if (policy !== undefined && policy !== "" && !EXISTING_RESOURCE_POLICIES.includes(policy)) {
    findings.push(deny("spec.existingResourcePolicy", `must be none or update (case-sensitive), not "${policy}"`));
  }
  return findings;
}
