import { X509Certificate } from "node:crypto";
import type { VeleroState } from "../admission/state.js";
import { awsConfigFindings } from "./awsConfig.js";
import { parseGoDuration } from "./duration.js";
import { deny, refuse, warn, type Finding } from "./findings.js";
import { KNOWN_PROVIDERS, LVP_PROVIDERS, namespaceOf, normalizeProvider, refOf, type BackupStorageLocation, type SecretKeyRef } from "./objects.js";
import { pluginNameProblem, resemblingProvider } from "./providerNames.js";
import { isQuantity } from "./quantity.js";
import { atLeast, parseVeleroVersion } from "./version.js";

/** app-snapshots' annotations on BackupStorageLocations. */
export const SHARED_STORAGE_ANNOTATION = "appsnapshots.io/shared-storage";
export const ALLOW_DELETE_ANNOTATION = "appsnapshots.io/allow-delete";

/** Velero trims leading and trailing "/" from bucket and prefix before use (pkg/persistence/object_store.go, objectBackupStoreGetter.Get). */
const trimSlashes = (text: string) => text.replace(/^\/+|\/+$/g, "");

/** Why Secrets may be unknown to the webhook: reading them is opt-in. */
export const SECRETS_NOT_READ = "app-snapshots does not read Secrets unless webhook.velero.checkSecretKeys is true";

/** The PEM certificates in a BSL's caCert (base64 of PEM in the object); why not, if none parse. */
export function caCertProblem(base64: string): string | undefined {
  const pem = Buffer.from(base64, "base64").toString("latin1");
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) return "holds no PEM certificate (it must be the base64 of one or more -----BEGIN CERTIFICATE----- blocks)";
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return `certificate ${i + 1} of ${blocks.length} does not parse`;
    }
  }
  return undefined;
}

/**
 * A Secret a location names. It may be created after the location (Helm's kind order, GitOps, External
 * Secrets), and Velero re-validates the location every minute, so what is missing is a warning.
 */
function secretRefFindings(field: string, what: string, ref: SecretKeyRef | undefined, namespace: string, state: VeleroState): Finding[] {
  if (!ref) return [];
  if (!ref.name) return [deny(`${field}.name`, "is required")];
  if (!ref.key) return [deny(`${field}.key`, "is required")];
  const secret = `${namespace}/${ref.name}`;
  if (!state.secrets) return [warn(field, `${what} Secret ${secret} not checked: ${SECRETS_NOT_READ}`)];
  const keys = state.secrets.get(secret);
  if (!keys) return [warn(field, `${what} Secret ${secret} does not exist yet; the location stays Unavailable until it does`)];
  if (!keys.includes(ref.key)) return [warn(field, `${what} Secret ${secret} has no key "${ref.key}" (it has: ${keys.join(", ") || "no keys"}); the location stays Unavailable until it does`)];
  return [];
}

function lvpFindings(provider: string, location: BackupStorageLocation, namespace: string, state: VeleroState): Finding[] {
  const findings: Finding[] = [];
  const config = location.spec?.config ?? {};
  const version = state.versions.get(namespace);
  const parsed = version ? parseVeleroVersion(version) : undefined;
  // Velero 1.17 writes new file-system backups with kopia only (restic dropped for new backups, PR #9069),
  // which local-volume-provider cannot hold (LVP PR #121); restic restore goes in 1.19 (#9467).
  if (parsed && atLeast(parsed, 1, 17)) {
    findings.push(
      warn("spec.provider", `on Velero ${version} local-volume-provider keeps resource and CSI backups working and restic backups restorable until 1.19, but kopia file-system backups fail`),
      warn("spec.provider", 'to keep file-system backups, serve this volume over S3 with app-snapshots storage: provider aws, s3Url http(s)://<storage service>:9000, s3ForcePathStyle "true"'),
    );
  } else if (!parsed) {
    findings.push(warn("spec.provider", `Velero version in ${namespace} unknown: from Velero 1.17 on, kopia file-system backups fail on local-volume-provider; serve the volume over S3 with app-snapshots storage`));
  }

  if (provider !== "replicated.com/pvc") {
    if (!config.path) findings.push(deny("spec.config.path", `is required for ${provider} (the directory on the ${provider === "replicated.com/nfs" ? "NFS export" : "node"})`));
    else if (!config.path.startsWith("/")) findings.push(deny("spec.config.path", `must be an absolute path, not "${config.path}"`));
  }
  if (provider === "replicated.com/nfs" && !config.server) findings.push(deny("spec.config.server", "is required for replicated.com/nfs (the NFS server address)"));
  if (provider === "replicated.com/pvc") {
    if (!config.storageSize) findings.push(deny("spec.config.storageSize", "is required for replicated.com/pvc (local-volume-provider crashes without it), e.g. 50Gi"));
    else if (!isQuantity(config.storageSize)) findings.push(deny("spec.config.storageSize", `"${config.storageSize}" is not a Kubernetes quantity (e.g. 50Gi); local-volume-provider would crash parsing it`));
  }
  if (provider === "replicated.com/hostpath" && (state.nodeCount ?? 1) > 1 && location.metadata?.annotations?.[SHARED_STORAGE_ANNOTATION] !== "true") {
    findings.push(
      warn("spec.config.path", `host path on ${state.nodeCount} nodes: backups land on Velero's current node. Annotate ${SHARED_STORAGE_ANNOTATION}: "true" if the path is shared`),
    );
  }
  return findings;
}

/** Where a location's data actually lives: provider, endpoint, bucket and prefix. */
function storageIdentity(location: BackupStorageLocation): { provider: string; endpoint: string; bucket: string; prefix: string } | undefined {
  const spec = location.spec;
  if (!spec?.provider || !spec.objectStorage?.bucket) return undefined;
  const provider = normalizeProvider(spec.provider);
  const config = spec.config ?? {};
  let endpoint = "";
  if (provider === "velero.io/aws") endpoint = (config.s3Url ?? "").replace(/\/+$/, "").toLowerCase();
  else if (provider === "velero.io/azure") endpoint = config.storageAccount ?? "";
  else if (provider === "replicated.com/nfs") endpoint = `${config.server ?? ""}:${config.path ?? ""}`;
  else if (provider === "replicated.com/hostpath") endpoint = config.path ?? "";
  return { provider, endpoint, bucket: trimSlashes(spec.objectStorage.bucket), prefix: trimSlashes(spec.objectStorage.prefix ?? "") };
}

const nestedIn = (inner: string, outer: string) => outer === "" || inner === outer || inner.startsWith(`${outer}/`);
const isReadOnly = (location: BackupStorageLocation) => location.spec?.accessMode === "ReadOnly";
const sameObject = (a: BackupStorageLocation, b: BackupStorageLocation) => refOf(a) === refOf(b);

/**
 * Two locations on one place in object storage. What Velero does with them decides the severity:
 * - same prefix, same namespace: backup names are unique in a namespace, so nothing is overwritten;
 *   the backup-sync controller finds every backup already in the cluster and imports none (it creates
 *   only names the namespace lacks, pkg/controller/backup_sync_controller.go), so each Backup stays
 *   with the location that wrote it, and deleting one deletes its data for both. A warning.
 * - same prefix, two namespaces (two Velero installations): each names its Schedules' backups
 *   <schedule>-<timestamp>, so equal names overwrite each other's data, and each installation's
 *   sync imports the other's backups and garbage-collects them at their TTL. Denied when both write.
 * - nested prefixes: the outer location then lists the inner prefix as an unknown top-level folder,
 *   and Velero marks it Unavailable (IsValid, pkg/persistence/object_store.go); every backup to it
 *   then fails. Denied when the inner one writes.
 */
function overlapFindings(location: BackupStorageLocation, state: VeleroState): Finding[] {
  const mine = storageIdentity(location);
  if (!mine) return [];
  const findings: Finding[] = [];
  for (const other of state.locations) {
    if (sameObject(other, location)) continue;
    const theirs = storageIdentity(other);
    if (!theirs || theirs.provider !== mine.provider || theirs.endpoint !== mine.endpoint || theirs.bucket !== mine.bucket) continue;
    if (!nestedIn(mine.prefix, theirs.prefix) && !nestedIn(theirs.prefix, mine.prefix)) continue;
    const name = refOf(other);
    const field = "spec.objectStorage.prefix";
    if (mine.prefix === theirs.prefix) {
      const where = `bucket "${mine.bucket}" prefix "${mine.prefix}" is also used by BackupStorageLocation ${name}`;
      if (namespaceOf(other) !== namespaceOf(location) && !isReadOnly(location) && !isReadOnly(other)) {
        findings.push(
          deny(
            field,
            `${where}, of another Velero installation: backups of equal names (a Schedule's <name>-<timestamp>) overwrite each other there, and each installation imports and garbage-collects the other's backups. Use a distinct prefix, or accessMode: ReadOnly for one`,
          ),
        );
      } else {
        findings.push(
          warn(field, where),
          warn(field, "both locations list the same backups; none is overwritten (backup names are unique per namespace), and deleting one deletes it for both"),
        );
      }
      continue;
    }
    const [inner, outer] = nestedIn(mine.prefix, theirs.prefix) ? [location, other] : [other, location];
    const innerPrefix = nestedIn(mine.prefix, theirs.prefix) ? mine.prefix : theirs.prefix;
    const outerPrefix = nestedIn(mine.prefix, theirs.prefix) ? theirs.prefix : mine.prefix;
    const where = `bucket "${mine.bucket}" prefix "${innerPrefix}" lies inside the prefix "${outerPrefix}" of ${sameObject(outer, location) ? "this location" : `BackupStorageLocation ${refOf(outer)}`}`;
    if (isReadOnly(inner)) findings.push(warn(field, where), warn(field, "the inner location is ReadOnly, so it adds no folder to the outer one's prefix"));
    else {
      findings.push(
        deny(
          field,
          `${where}: once ${sameObject(inner, location) ? "this location" : refOf(inner)} writes, Velero finds an unknown top-level folder under "${outerPrefix}" and marks ${sameObject(outer, location) ? "this location" : refOf(outer)} Unavailable, failing its backups. Use prefixes that do not nest`,
        ),
      );
    }
  }
  return findings;
}

/** The provider's name as Velero resolves it: refused if no plugin can carry it, a warning if unknown. */
function providerFindings(provider: string): Finding[] {
  const problem = pluginNameProblem(provider);
  if (problem) return [deny("spec.provider", `"${provider}" ${problem}`)];
  const normalized = normalizeProvider(provider);
  if (KNOWN_PROVIDERS.includes(normalized)) return [];
  const resembles = resemblingProvider(provider);
  // Velero looks the plugin up by this exact name; without one the location stays Unavailable (the BSL
  // controller's "unable to locate ObjectStore plugin named ..."), and a plugin added later
  // (velero plugin add) makes it work: not a permanent failure, so not a denial.
  if (resembles) {
    return [warn("spec.provider", `"${provider}" looks like ${resembles}: Velero finds plugins by exact name; until one of this name exists, the location stays Unavailable`)];
  }
  return [warn("spec.provider", `${normalized} is not a provider app-snapshots knows; its config was not checked`)];
}

/** Every rule for a BackupStorageLocation being created or updated. */
export function validateLocation(location: BackupStorageLocation, state: VeleroState): Finding[] {
  const findings: Finding[] = [];
  const spec = location.spec ?? {};
  const namespace = namespaceOf(location);
  if (!spec.provider) return [deny("spec.provider", "is required (e.g. aws, or velero.io/aws)")];
  const provider = normalizeProvider(spec.provider);
  const bucket = spec.objectStorage?.bucket;
  if (!spec.objectStorage) findings.push(deny("spec.objectStorage", "is required"));
  else if (!bucket || trimSlashes(bucket) === "") findings.push(deny("spec.objectStorage.bucket", "is required and must not be empty"));
  else if (trimSlashes(bucket).includes("/")) {
    findings.push(deny("spec.objectStorage.bucket", `"${bucket}" must not contain "/"; put the path in spec.objectStorage.prefix (bucket: ${trimSlashes(bucket).split("/")[0]}, prefix: ${trimSlashes(bucket).split("/").slice(1).join("/")})`));
  }
  for (const key of ["bucket", "prefix"] as const) {
    const value = spec.objectStorage?.[key];
    // A bucket with an inner "/" is denied above; otherwise surrounding slashes are harmless.
    if (value && value !== trimSlashes(value) && !(key === "bucket" && trimSlashes(value).includes("/"))) {
      findings.push(warn(`spec.objectStorage.${key}`, `"${value}": Velero trims the leading and trailing "/"; write "${trimSlashes(value)}"`));
    }
  }
  for (const key of ["bucket", "prefix"]) {
    if (spec.config?.[key] !== undefined) findings.push(warn(`spec.config.${key}`, `is ignored: Velero overwrites it with spec.objectStorage.${key} (velero#8918)`));
  }
  if (spec.objectStorage?.caCert !== undefined && spec.objectStorage.caCertRef !== undefined) {
    findings.push(deny("spec.objectStorage.caCert", "and caCertRef are both set; use only caCertRef (caCert is deprecated)"));
  } else if (spec.objectStorage?.caCert !== undefined) {
    const problem = caCertProblem(spec.objectStorage.caCert);
    if (problem) findings.push(deny("spec.objectStorage.caCert", problem));
  }
  findings.push(...secretRefFindings("spec.objectStorage.caCertRef", "CA certificate", spec.objectStorage?.caCertRef, namespace, state));
  if (spec.accessMode !== undefined && spec.accessMode !== "ReadOnly" && spec.accessMode !== "ReadWrite") {
    findings.push(deny("spec.accessMode", `must be ReadOnly or ReadWrite, not "${spec.accessMode}"`));
  }
  for (const key of ["backupSyncPeriod", "validationFrequency"] as const) {
    const value = spec[key];
    if (value === undefined || value === null) continue;
    const ns = parseGoDuration(String(value));
    if (ns === undefined) findings.push(deny(`spec.${key}`, `"${String(value)}" is not a duration (e.g. 1m, 30s, 1h)`));
    else if (ns < 0) findings.push(warn(`spec.${key}`, "is negative; Velero then uses its default"));
  }
  findings.push(...secretRefFindings("spec.credential", "credential", spec.credential, namespace, state));

  const config = spec.config ?? {};
  findings.push(...providerFindings(spec.provider));
  if (provider === "velero.io/aws") {
    findings.push(...awsConfigFindings(config, bucket && trimSlashes(bucket)));
  } else if (provider === "velero.io/azure") {
    if (!config.storageAccount) findings.push(deny("spec.config.storageAccount", "is required for velero.io/azure"));
    if (!config.resourceGroup) findings.push(warn("spec.config.resourceGroup", "is not set; the Azure plugin needs it unless the storage account key or a workload identity is used"));
  } else if (LVP_PROVIDERS.includes(provider)) {
    findings.push(...lvpFindings(provider, location, namespace, state));
  }

  findings.push(...overlapFindings(location, state));
  if (spec.default === true) {
    const others = state.locations.filter((o) => !sameObject(o, location) && namespaceOf(o) === namespace && o.spec?.default === true);
    if (others.length > 0) {
      findings.push(warn("spec.default", `${others.map((o) => o.metadata?.name).join(", ")} is already the default; Velero keeps only the newest default and sets the others to false`));
    }
  }
  return findings;
}

const storageFields = (l: BackupStorageLocation) => JSON.stringify([l.spec?.provider, l.spec?.objectStorage?.bucket, l.spec?.objectStorage?.prefix, l.spec?.config?.s3Url]);

/** Extra findings when an existing location changes where its data lives. */
export function validateLocationUpdate(location: BackupStorageLocation, old: BackupStorageLocation, state: VeleroState): Finding[] {
  if (storageFields(location) === storageFields(old)) return [];
  const name = old.metadata?.name;
  const namespace = namespaceOf(old);
  const count = state.backups.filter((b) => namespaceOf(b) === namespace && b.spec?.storageLocation === name).length;
  if (count === 0) return [];
  return [warn("spec.objectStorage", `${count} backup${count === 1 ? "" : "s"} reference this location and will no longer be found (provider, bucket, prefix or s3Url changed)`)];
}

/** Deleting a location: refused while Schedules still write to it, unless explicitly allowed. */
export function validateLocationDelete(old: BackupStorageLocation, state: VeleroState): Finding[] {
  const name = old.metadata?.name;
  const namespace = namespaceOf(old);
  const findings: Finding[] = [];
  const schedules = state.schedules.filter((s) => namespaceOf(s) === namespace && s.spec?.template?.storageLocation === name).map((s) => s.metadata?.name ?? "?");
  if (schedules.length > 0) {
    const message = `Schedule${schedules.length === 1 ? ` ${schedules[0]} still backs` : `s ${schedules.join(", ")} still back`} up to this location`;
    if (old.metadata?.annotations?.[ALLOW_DELETE_ANNOTATION] === "true") findings.push(warn("metadata.name", `${message}; deleted anyway (${ALLOW_DELETE_ANNOTATION})`));
    else findings.push(refuse("metadata.name", `${message}; change or delete them first, or annotate the location ${ALLOW_DELETE_ANNOTATION}: "true"`));
  }
  if (old.spec?.default === true) findings.push(warn("spec.default", "this was the default location; Backups without storageLocation fail until another location is default"));
  return findings;
}
