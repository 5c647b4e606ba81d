import { X509Certificate } from "node:crypto";
import type { VeleroState } from "../admission/state.js";
import { parseGoDuration } from "./duration.js";
import { deny, refuse, warn, type Finding } from "./findings.js";
import { KNOWN_PROVIDERS, LVP_PROVIDERS, namespaceOf, normalizeProvider, refOf, type BackupStorageLocation, type SecretKeyRef } from "./objects.js";
import { isQuantity } from "./quantity.js";
import { atLeast, parseVeleroVersion } from "./version.js";

/** app-snapshots' annotations on BackupStorageLocations. */
export const SHARED_STORAGE_ANNOTATION = "appsnapshots.io/shared-storage";
export const ALLOW_DELETE_ANNOTATION = "appsnapshots.io/allow-delete";

const CHECKSUM_ALGORITHMS = ["", "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];
const trimSlashes = (text: string) => text.replace(/^\/+|\/+$/g, "");

/** Real-AWS bucket naming rules (general purpose buckets). */
export function s3BucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return "must be 3 to 63 characters long";
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) return "may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit";
  if (bucket.includes("..")) return "must not contain two dots in a row";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return "must not look like an IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(bucket) || /(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(bucket)) return "uses a prefix or suffix AWS reserves";
  return undefined;
}

/** http(s)://host[:port] and nothing else: kopia and minio-go reject a path in the endpoint. */
export function endpointProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL; use http(s)://host[:port]`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `"${text}" must start with http:// or https://`;
  if (url.username || url.password) return "must not carry credentials; use the credential Secret";
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return `"${text}" has a path or query; use http(s)://host[:port] (kopia rejects a path in s3Url)`;
  return undefined;
}

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

function secretRefFindings(field: string, ref: SecretKeyRef | undefined, namespace: string, state: VeleroState): Finding[] {
  if (!ref) return [];
  if (!ref.name) return [deny(`${field}.name`, "is required")];
  if (!ref.key) return [deny(`${field}.key`, "is required")];
  const keys = state.secrets.get(`${namespace}/${ref.name}`);
  if (!keys) return [deny(field, `Secret ${namespace}/${ref.name} does not exist; create it before the location (Velero cannot validate a location without it)`)];
  if (!keys.includes(ref.key)) return [deny(field, `Secret ${namespace}/${ref.name} has no key "${ref.key}" (it has: ${keys.join(", ") || "no keys"})`)];
  return [];
}

const isTrueFalse = (v: string) => v === "true" || v === "false";

function awsFindings(config: Record<string, string>, bucket: string | undefined): Finding[] {
  const findings: Finding[] = [];
  const s3Url = config.s3Url;
  if (!config.region) {
    findings.push(
      s3Url
        ? warn("spec.config.region", "is not set; kopia then asks the server, but velero-plugin-for-aws >= 1.14.1 needs a region with s3Url: set any region the server accepts")
        : deny("spec.config.region", "is required for AWS S3 (set s3Url for other S3-compatible storage)"),
    );
  }
  for (const key of ["s3Url", "publicUrl"]) {
    const value = config[key];
    if (value === undefined) continue;
    const problem = endpointProblem(value);
    if (problem) findings.push(deny(`spec.config.${key}`, problem));
  }
  if (bucket) {
    const problem = s3BucketNameProblem(bucket);
    if (problem) findings.push(s3Url ? warn("spec.objectStorage.bucket", `${problem} by AWS rules; fine if your server allows it`) : deny("spec.objectStorage.bucket", `${problem} (S3 bucket naming)`));
  }
  for (const key of ["s3ForcePathStyle", "insecureSkipTLSVerify"]) {
    if (config[key] !== undefined && !isTrueFalse(config[key])) findings.push(deny(`spec.config.${key}`, `must be "true" or "false", not "${config[key]}"`));
  }
  if (config.checksumAlgorithm !== undefined && !CHECKSUM_ALGORITHMS.includes(config.checksumAlgorithm)) {
    findings.push(deny("spec.config.checksumAlgorithm", `must be one of "", CRC32, CRC32C, CRC64NVME, SHA1, SHA256; not "${config.checksumAlgorithm}"`));
  }
  const sse = config.serverSideEncryption;
  if (sse !== undefined && sse !== "AES256" && sse !== "aws:kms") findings.push(deny("spec.config.serverSideEncryption", `must be AES256 or aws:kms, not "${sse}"`));
  if (config.kmsKeyId !== undefined && sse !== "aws:kms") findings.push(deny("spec.config.kmsKeyId", 'needs serverSideEncryption: "aws:kms"'));
  return findings;
}

function lvpFindings(provider: string, location: BackupStorageLocation, namespace: string, state: VeleroState): Finding[] {
  const findings: Finding[] = [];
  const config = location.spec?.config ?? {};
  const version = state.versions.get(namespace);
  const parsed = version ? parseVeleroVersion(version) : undefined;
  const lvpMessage =
    "local-volume-provider cannot store kopia file-system backups (pod volume data) on Velero >= 1.17, and its backups cannot be restored there. " +
    "Serve the volume over S3 instead: app-snapshots storage, with provider: velero.io/aws, config.s3Url: http(s)://<app-snapshots-storage>:9000, s3ForcePathStyle: \"true\"";
  if (parsed && atLeast(parsed, 1, 17)) findings.push(deny("spec.provider", `Velero ${version} in ${namespace}: ${lvpMessage}`));
  else if (!parsed) findings.push(warn("spec.provider", `Velero version in ${namespace} unknown: on Velero >= 1.17 local-volume-provider cannot hold kopia volume data; serve the volume over S3 with app-snapshots storage`));

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
const sameObject = (a: BackupStorageLocation, b: BackupStorageLocation) =>
  refOf(a) === refOf(b);

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
    const where = `bucket "${mine.bucket}" prefix "${mine.prefix}" ${mine.prefix === theirs.prefix ? "is also used by" : "overlaps the prefix \"" + theirs.prefix + "\" of"} BackupStorageLocation ${name}`;
    if (isReadOnly(location) || isReadOnly(other)) {
      findings.push(warn("spec.objectStorage.prefix", `${where} (one of them is ReadOnly, as for a migration or restore)`));
    } else {
      findings.push(
        deny(
          "spec.objectStorage.prefix",
          `${where}; two read-write locations there overwrite each other's backups, and Velero marks a location Unavailable when unknown top-level folders appear. Use a distinct prefix, or accessMode: ReadOnly for one`,
        ),
      );
    }
  }
  return findings;
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
  const prefix = spec.objectStorage?.prefix;
  if (prefix?.startsWith("/")) findings.push(deny("spec.objectStorage.prefix", `"${prefix}" must not start with "/"`));
  else if (prefix?.endsWith("/")) findings.push(warn("spec.objectStorage.prefix", `"${prefix}": Velero trims the trailing "/"; write "${trimSlashes(prefix)}"`));
  for (const key of ["bucket", "prefix"]) {
    if (spec.config?.[key] !== undefined) findings.push(warn(`spec.config.${key}`, `is ignored: Velero overwrites it with spec.objectStorage.${key} (velero#8918)`));
  }
  if (spec.objectStorage?.caCert !== undefined && spec.objectStorage.caCertRef !== undefined) {
    findings.push(deny("spec.objectStorage.caCert", "and caCertRef are both set; use only caCertRef (caCert is deprecated)"));
  } else if (spec.objectStorage?.caCert !== undefined) {
    const problem = caCertProblem(spec.objectStorage.caCert);
    if (problem) findings.push(deny("spec.objectStorage.caCert", problem));
  }
  findings.push(...secretRefFindings("spec.objectStorage.caCertRef", spec.objectStorage?.caCertRef, namespace, state));
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
  findings.push(...secretRefFindings("spec.credential", spec.credential, namespace, state));

  const config = spec.config ?? {};
  if (!KNOWN_PROVIDERS.includes(provider)) {
    findings.push(warn("spec.provider", `${provider} is not a provider app-snapshots knows; its config was not checked`));
  } else if (provider === "velero.io/aws") {
    findings.push(...awsFindings(config, bucket && trimSlashes(bucket)));
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
