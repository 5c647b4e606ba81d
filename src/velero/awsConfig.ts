import { parseGoBool } from "./annotations.js";
import { endpointProblem, s3BucketNameProblem } from "./s3Names.js";
import { deny, warn, type Finding } from "./findings.js";
import { nearest } from "./spelling.js";

/**
 * The config keys velero-plugin-for-aws v1.14.2 accepts: ObjectStore.Init passes exactly these to
 * ValidateObjectStoreConfigKeys (velero-plugin-for-aws/object_store.go, Init), and any other key
 * fails Init ("config has invalid keys"), so the location never becomes Available.
 */
export const AWS_PLUGIN_KEYS = [
  "region",
  "s3Url",
  "publicUrl",
  "kmsKeyId",
  "customerKeyEncryptionFile",
  "customerKeyEncryptionSecret",
  "s3ForcePathStyle",
  "signatureVersion",
  "credentialsFile",
  "profile",
  "serverSideEncryption",
  "insecureSkipTLSVerify",
  "enableSharedConfig",
  "tagging",
  "checksumAlgorithm",
] as const;

/**
 * Keys Velero adds itself before Init, which ValidateObjectStoreConfigKeys therefore always accepts
 * (velero pkg/plugin/framework/validation.go). Velero overwrites config.bucket and config.prefix with
 * spec.objectStorage's (pkg/persistence/object_store.go, objectBackupStoreGetter.Get); config.caCert
 * is passed on unless spec.objectStorage.caCert or caCertRef replaces it.
 */
export const VELERO_ADDED_KEYS = ["bucket", "prefix", "caCert"] as const;

const KNOWN_KEYS: readonly string[] = [...AWS_PLUGIN_KEYS, ...VELERO_ADDED_KEYS];

/** What ChecksumAlgorithm.Values() holds in the plugin's aws-sdk-go-v2 (validChecksumAlg), and "" (no checksum). */
const CHECKSUM_ALGORITHMS = ["", "CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"];
/** The values S3 accepts for x-amz-server-side-encryption; the plugin passes the text through unchecked. */
const SERVER_SIDE_ENCRYPTION = ["AES256", "aws:kms", "aws:kms:dsse"];

/** The plugin's CheckTags (velero-plugin-for-aws/helpers.go), as Init calls it when tagging is set. */
function taggingProblem(tagging: string): string | undefined {
  const tags = tagging.split("&");
  // A single tag fails too: CheckTags refuses a value without "&".
  if (tags.length === 1) return 'is refused by velero-plugin-for-aws unless it holds at least two tags joined by "&" (its CheckTags)';
  if (tags.length > 10) return "holds more than 10 tags; S3 allows ten per object";
  for (const tag of tags) {
    const parts = tag.split("=");
    if (parts.length !== 2) return `tag "${tag}" is not key=value`;
    if ([...parts[0]!].length > 128) return `tag key "${parts[0]}" is longer than 128 characters`;
    if ([...parts[1]!].length > 248) return `the value of tag "${parts[0]}" is longer than velero-plugin-for-aws allows (248 characters)`;
  }
  return undefined;
}

/** velero-plugin-for-aws's reading of a location's config (object_store.go, Init), as findings. */
export function awsConfigFindings(config: Readonly<Record<string, string>>, bucket: string | undefined): Finding[] {
  const findings: Finding[] = [];
  const unknown = Object.keys(config).filter((key) => !KNOWN_KEYS.includes(key));
  for (const key of unknown) {
    const meant = nearest(key, KNOWN_KEYS, 2);
    findings.push(
      deny(
        `spec.config.${key}`,
        `is not a key velero-plugin-for-aws accepts, and it refuses unknown keys (the location stays Unavailable)${meant ? `; did you mean ${meant}?` : ""} Known keys: ${AWS_PLUGIN_KEYS.join(", ")} (bucket, prefix and caCert come from spec.objectStorage)`,
      ),
    );
  }
  const s3Url = config.s3Url;
  // Init: with neither s3Url nor region the plugin asks S3 for the bucket's region (GetBucketRegion), as kopia does.
  if (!config.region && s3Url) {
    findings.push(warn("spec.config.region", "is not set; with s3Url, velero-plugin-for-aws >= 1.14.1 needs one: set any region the server accepts (e.g. us-east-1)"));
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
  // Init parses these with strconv.ParseBool when they are not empty (enableSharedConfig is accepted but not read in v1.14.2).
  for (const key of ["s3ForcePathStyle", "insecureSkipTLSVerify"]) {
    const value = config[key];
    if (value !== undefined && value !== "" && parseGoBool(value) === undefined) {
      findings.push(deny(`spec.config.${key}`, `"${value}" is not a boolean to Go's strconv.ParseBool (true, false, 1, 0, t, f, True, FALSE, ...)`));
    }
  }
  if (config.checksumAlgorithm !== undefined && !CHECKSUM_ALGORITHMS.includes(config.checksumAlgorithm)) {
    findings.push(deny("spec.config.checksumAlgorithm", `must be one of "", ${CHECKSUM_ALGORITHMS.slice(1).join(", ")}; not "${config.checksumAlgorithm}"`));
  }
  const sse = config.serverSideEncryption;
  if (sse !== undefined && sse !== "" && !SERVER_SIDE_ENCRYPTION.includes(sse)) {
    findings.push(deny("spec.config.serverSideEncryption", `must be ${SERVER_SIDE_ENCRYPTION.join(", ")} (S3 refuses every upload otherwise), not "${sse}"`));
  }
  // Init allows one SSE method only; PutObject sends aws:kms itself whenever kmsKeyId is set.
  const sseMethods = (["kmsKeyId", "customerKeyEncryptionFile", "customerKeyEncryptionSecret"] as const).filter((key) => config[key]);
  if (sseMethods.length > 1) {
    findings.push(deny(`spec.config.${sseMethods[1]}`, `and ${sseMethods[0]} are both set; velero-plugin-for-aws refuses more than one of kmsKeyId, customerKeyEncryptionFile, customerKeyEncryptionSecret`));
  } else if (config.kmsKeyId && sse && sse !== "aws:kms") {
    findings.push(warn("spec.config.serverSideEncryption", `"${sse}" is ignored: with kmsKeyId set, velero-plugin-for-aws uploads with aws:kms`));
  }
  if (config.tagging) {
    const problem = taggingProblem(config.tagging);
    if (problem) findings.push(deny("spec.config.tagging", problem));
  }
  return findings;
}
