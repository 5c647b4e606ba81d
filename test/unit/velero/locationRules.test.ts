import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { createCa } from "../../../src/certs/authority.js";
import { buildClusterState } from "../../../src/admission/state.js";
import { awsSpec, bsl, node, NS, secret, veleroDeployment, veleroReview, veleroState } from "./support.js";

/** Denial message and warnings for creating `object` in `objects`' cluster. */
function create(object: ReturnType<typeof bsl>, objects: unknown[] = []) {
  const out = admit(veleroReview("BackupStorageLocation", "CREATE", object), veleroState(objects), "velero").response;
  // Every warning must reach the client whole (formatWarnings cuts longer ones with "...").
  for (const warning of out.warnings ?? []) expect(warning.endsWith("..."), warning).toBe(false);
  return { allowed: out.allowed, code: out.status?.code, message: out.status?.message ?? "", warnings: out.warnings ?? [] };
}
const prefix = (name = "default") => `app-snapshots: BackupStorageLocation ${NS}/${name} is invalid: `;

describe("BackupStorageLocation rules", () => {
  it("accepts a correct S3-compatible location with no warnings", () => {
    expect(create(bsl("default", awsSpec()))).toEqual({ allowed: true, code: undefined, message: "", warnings: [] });
  });

  it.each([
    ["provider missing", { ...awsSpec(), provider: undefined }, "spec.provider: is required (e.g. aws, or velero.io/aws)"],
    ["bucket with a slash", awsSpec({ objectStorage: { bucket: "backups/cluster-a" } }), 'spec.objectStorage.bucket: "backups/cluster-a" must not contain "/"; put the path in spec.objectStorage.prefix (bucket: backups, prefix: cluster-a)'],
    ["empty bucket", awsSpec({ objectStorage: { bucket: "" } }), "spec.objectStorage.bucket: is required and must not be empty"],
    ["caCert and caCertRef", awsSpec({ objectStorage: { bucket: "b1x", caCert: "eA==", caCertRef: { name: "ca", key: "ca.crt" } } }), "spec.objectStorage.caCert: and caCertRef are both set; use only caCertRef (caCert is deprecated)"],
    ["caCert that is no certificate", awsSpec({ objectStorage: { bucket: "b1x", caCert: Buffer.from("hello").toString("base64") } }), "spec.objectStorage.caCert: holds no PEM certificate (it must be the base64 of one or more -----BEGIN CERTIFICATE----- blocks)"],
    ["bad accessMode", awsSpec({ accessMode: "readwrite" }), 'spec.accessMode: must be ReadOnly or ReadWrite, not "readwrite"'],
    ["bad backupSyncPeriod", awsSpec({ backupSyncPeriod: "1 minute" }), 'spec.backupSyncPeriod: "1 minute" is not a duration (e.g. 1m, 30s, 1h)'],
    ["s3Url with a path", awsSpec({}, { s3Url: "http://minio:9000/backups" }), 'spec.config.s3Url: "http://minio:9000/backups" has a path or query; use http(s)://host[:port] (kopia rejects a path in s3Url)'],
    ["s3Url without scheme", awsSpec({}, { s3Url: "minio:9000" }), 'spec.config.s3Url: "minio:9000" must start with http:// or https://'],
    ["publicUrl not a URL", awsSpec({}, { publicUrl: "not a url" }), 'spec.config.publicUrl: "not a url" is not a URL; use http(s)://host[:port]'],
    ["s3ForcePathStyle yes", awsSpec({}, { s3ForcePathStyle: "yes" }), 'spec.config.s3ForcePathStyle: "yes" is not a boolean to Go\'s strconv.ParseBool (true, false, 1, 0, t, f, True, FALSE, ...)'],
    ["insecureSkipTLSVerify on", awsSpec({}, { insecureSkipTLSVerify: "on" }), 'spec.config.insecureSkipTLSVerify: "on" is not a boolean to Go\'s strconv.ParseBool (true, false, 1, 0, t, f, True, FALSE, ...)'],
    ["checksumAlgorithm MD5", awsSpec({}, { checksumAlgorithm: "MD5" }), 'spec.config.checksumAlgorithm: must be one of "", CRC32, CRC32C, SHA1, SHA256, CRC64NVME; not "MD5"'],
    ["serverSideEncryption kms", awsSpec({}, { serverSideEncryption: "kms" }), 'spec.config.serverSideEncryption: must be AES256, aws:kms, aws:kms:dsse (S3 refuses every upload otherwise), not "kms"'],
    [
      "kmsKeyId with customerKeyEncryptionFile",
      awsSpec({}, { kmsKeyId: "k1", customerKeyEncryptionFile: "/credentials/customer-key" }),
      "spec.config.customerKeyEncryptionFile: and kmsKeyId are both set; velero-plugin-for-aws refuses more than one of kmsKeyId, customerKeyEncryptionFile, customerKeyEncryptionSecret",
    ],
    ["a single tag", awsSpec({}, { tagging: "team=db" }), 'spec.config.tagging: is refused by velero-plugin-for-aws unless it holds at least two tags joined by "&" (its CheckTags)'],
    [
      "an unknown config key, with the key it resembles",
      awsSpec({}, { s3URL: "http://minio:9000" }),
      "spec.config.s3URL: is not a key velero-plugin-for-aws accepts, and it refuses unknown keys (the location stays Unavailable); did you mean s3Url? Known keys: region, s3Url, publicUrl, kmsKeyId, customerKeyEncryptionFile, customerKeyEncryptionSecret, s3ForcePathStyle, signatureVersion, credentialsFile, profile, serverSideEncryption, insecureSkipTLSVerify, enableSharedConfig, tagging, checksumAlgorithm (bucket, prefix and caCert come from spec.objectStorage)",
    ],
    ["an unknown config key like no known one", awsSpec({}, { endpoint: "http://minio:9000" }), "spec.config.endpoint: is not a key velero-plugin-for-aws accepts, and it refuses unknown keys (the location stays Unavailable) Known keys:"],
    ["a provider no plugin can be named", { ...awsSpec(), provider: "Velero.io/aws" }, 'spec.provider: "Velero.io/aws" "Velero.io" is not a DNS subdomain (lowercase letters, digits, "-" and "."), so no plugin can register this name'],
    ["a provider with two slashes", { ...awsSpec(), provider: "example.com/aws/s3" }, 'spec.provider: "example.com/aws/s3" has more than one "/"; plugin names are <DNS subdomain>/<name>'],
    ["real-AWS bucket naming", { provider: "aws", objectStorage: { bucket: "My_Backups" }, config: { region: "eu-west-1" } }, "spec.objectStorage.bucket: may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit (S3 bucket naming)"],
    ["azure without storageAccount", { provider: "azure", objectStorage: { bucket: "velero" }, config: { resourceGroup: "rg" } }, "spec.config.storageAccount: is required for velero.io/azure"],
  ])("denies %s with 422 and a message naming the field", (_name, spec, finding) => {
    const result = create(bsl("default", spec));
    expect(result.allowed).toBe(false);
    expect(result.code).toBe(422);
    if (finding.endsWith("Known keys:")) expect(result.message.startsWith(prefix() + finding)).toBe(true);
    else expect(result.message).toBe(prefix() + finding);
  });

  it.each([
    ["a trailing slash on prefix", awsSpec({ objectStorage: { bucket: "backups", prefix: "a/" } }), 'spec.objectStorage.prefix: "a/": Velero trims the leading and trailing "/"; write "a"'],
    ["a leading slash on prefix", awsSpec({ objectStorage: { bucket: "backups", prefix: "/a" } }), 'spec.objectStorage.prefix: "/a": Velero trims the leading and trailing "/"; write "a"'],
    ["slashes around the bucket", awsSpec({ objectStorage: { bucket: "/backups/" } }), 'spec.objectStorage.bucket: "/backups/": Velero trims the leading and trailing "/"; write "backups"'],
    ["missing credential Secret", awsSpec({ credential: { name: "nope", key: "cloud" } }), "spec.credential: credential Secret velero/nope does not exist yet; the location stays Unavailable until it does"],
    ["credential key missing", awsSpec({ credential: { name: "cloud-credentials", key: "aws" } }), 'spec.credential: credential Secret velero/cloud-credentials has no key "aws" (it has: cloud); the location stays Unavailable until it does'],
    ["kmsKeyId with serverSideEncryption AES256", awsSpec({}, { serverSideEncryption: "AES256", kmsKeyId: "k1" }), 'spec.config.serverSideEncryption: "AES256" is ignored: with kmsKeyId set, velero-plugin-for-aws uploads with aws:kms'],
    ["a provider spelt like aws with a digit", { ...awsSpec(), provider: "aws2" }, '"aws2" looks like velero.io/aws: Velero finds plugins by exact name; until one of this name exists, the location stays Unavailable'],
    ["a provider with a trailing space", { ...awsSpec(), provider: "velero.io/aws " }, '"velero.io/aws " looks like velero.io/aws: Velero finds plugins by exact name; until one of this name exists, the location stays Unavailable'],
    ["a provider in capitals", { ...awsSpec(), provider: "AWS" }, '"AWS" looks like velero.io/aws: Velero finds plugins by exact name; until one of this name exists, the location stays Unavailable'],
    [
      "local-volume-provider with a capital",
      { provider: "replicated.com/hostPath", objectStorage: { bucket: "snapshots" }, config: { path: "/var/snapshots" } },
      '"replicated.com/hostPath" looks like replicated.com/hostpath: Velero finds plugins by exact name; until one of this name exists, the location stays Unavailable',
    ],
    ["config.prefix", awsSpec({}, { prefix: "x" }), "spec.config.prefix: is ignored: Velero overwrites it with spec.objectStorage.prefix (velero#8918)"],
    ["s3Url without region", awsSpec({ config: { s3Url: "http://minio:9000" } }), "spec.config.region: is not set; with s3Url, velero-plugin-for-aws >= 1.14.1 needs one: set any region the server accepts (e.g. us-east-1)"],
    ["an S3-compatible bucket AWS would refuse", awsSpec({ objectStorage: { bucket: "Backups" } }), "spec.objectStorage.bucket: may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit by AWS rules; fine if your server allows it"],
    ["an unknown provider", { provider: "example.com/local", objectStorage: { bucket: "b" } }, "spec.provider: example.com/local is not a provider app-snapshots knows; its config was not checked"],
    ["azure without resourceGroup", { provider: "azure", objectStorage: { bucket: "velero" }, config: { storageAccount: "sa" } }, "spec.config.resourceGroup: is not set; the Azure plugin needs it unless the storage account key or a workload identity is used"],
    ["a negative validationFrequency", awsSpec({ validationFrequency: "-1m" }), "spec.validationFrequency: is negative; Velero then uses its default"],
  ])("allows %s with a warning", (_name, spec, warning) => {
    const result = create(bsl("default", spec));
    expect(result.allowed).toBe(true);
    expect(result.warnings).toEqual([`app-snapshots: ${warning.startsWith('"') ? `spec.provider: ${warning}` : warning}`]);
  });

  it("accepts the location of velero-plugin-for-aws's documentation (region only: the plugin looks the rest up)", () => {
    const documented = { provider: "velero.io/aws", objectStorage: { bucket: "my-bucket", prefix: "my-prefix" }, credential: { key: "cloud", name: "cloud-credentials" }, config: { region: "us-east-1" } };
    expect(create(bsl("default", documented))).toEqual({ allowed: true, code: undefined, message: "", warnings: [] });
    // Neither region nor s3Url: the plugin (GetBucketRegion) and kopia ask S3 for the bucket's region.
    expect(create(bsl("default", { ...documented, config: {} }))).toEqual({ allowed: true, code: undefined, message: "", warnings: [] });
  });

  it("reads booleans as Go's strconv.ParseBool does", () => {
    for (const value of ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False", ""]) {
      expect(create(bsl("default", awsSpec({}, { s3ForcePathStyle: value, insecureSkipTLSVerify: value }))).allowed, value).toBe(true);
    }
    for (const value of ["yes", "on", "tRUE", " true"]) expect(create(bsl("default", awsSpec({}, { s3ForcePathStyle: value }))).allowed, value).toBe(false);
  });

  it("accepts every key the AWS plugin reads, and the keys Velero adds itself", () => {
    const config = {
      region: "us-east-1",
      s3Url: "http://minio:9000",
      publicUrl: "https://minio.example",
      kmsKeyId: "502b409c-4da1-419f-a16e-eif453b3i49f",
      s3ForcePathStyle: "true",
      signatureVersion: "1",
      credentialsFile: "/credentials/cloud",
      profile: "default",
      insecureSkipTLSVerify: "false",
      enableSharedConfig: "true",
      tagging: "team=db&env=prod",
      checksumAlgorithm: "",
      caCert: "eA==",
    };
    expect(create(bsl("default", { ...awsSpec(), config }))).toEqual({ allowed: true, code: undefined, message: "", warnings: [] });
    // kmsKeyId alone: the plugin sends aws:kms itself.
    expect(create(bsl("default", awsSpec({}, { kmsKeyId: "k1" }))).warnings).toEqual([]);
  });

  it("says the Secrets were not checked when app-snapshots does not read them, and never denies for them", () => {
    const spec = awsSpec({ objectStorage: { bucket: "b1x", caCertRef: { name: "storage-ca", key: "ca.crt" } } });
    const out = admit(veleroReview("BackupStorageLocation", "CREATE", bsl("default", spec)), buildClusterState({ objects: [] }), "velero").response;
    expect(out.allowed).toBe(true);
    expect(out.warnings).toEqual([
      "app-snapshots: spec.objectStorage.caCertRef: CA certificate Secret velero/storage-ca not checked: app-snapshots does not read Secrets unless webhook.velero.checkSecretKeys is true",
      "app-snapshots: spec.credential: credential Secret velero/cloud-credentials not checked: app-snapshots does not read Secrets unless webhook.velero.checkSecretKeys is true",
    ]);
  });

  it("judges an object in the request's namespace when the object names none", () => {
    const object = { apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name: "default" }, spec: awsSpec() };
    const review = veleroReview("BackupStorageLocation", "CREATE", object);
    expect(review.request.namespace).toBe(NS);
    expect(admit(review, veleroState([]), "velero").response).toEqual({ uid: "b1", allowed: true });
  });

  it("accepts a caCert of real PEM certificates", () => {
    const pem = createCa({ commonName: "storage-ca", validityDays: 1 }).certPem;
    expect(create(bsl("default", awsSpec({ objectStorage: { bucket: "b1x", caCert: Buffer.from(pem + pem).toString("base64") } }))).allowed).toBe(true);
  });

  it("checks caCertRef against the Secrets, warning while it is missing (it may be created later)", () => {
    const spec = awsSpec({ objectStorage: { bucket: "b1x", caCertRef: { name: "storage-ca", key: "ca.crt" } } });
    expect(create(bsl("default", spec))).toMatchObject({
      allowed: true,
      warnings: ["app-snapshots: spec.objectStorage.caCertRef: CA certificate Secret velero/storage-ca does not exist yet; the location stays Unavailable until it does"],
    });
    expect(create(bsl("default", spec), [secret("storage-ca", ["ca.crt"])])).toMatchObject({ allowed: true, warnings: [] });
  });

  describe("local-volume-provider", () => {
    const hostpath = { provider: "replicated.com/hostpath", objectStorage: { bucket: "snapshots" }, config: { path: "/var/snapshots" } };
    it("is allowed on Velero 1.17+ (pre-releases count) with a warning saying what fails and how to move to S3", () => {
      for (const tag of ["v1.18.2", "v1.17.0-rc.1"]) {
        expect(create(bsl("default", hostpath), [veleroDeployment(tag)])).toEqual({
          allowed: true,
          code: undefined,
          message: "",
          warnings: [
            `app-snapshots: spec.provider: on Velero ${tag} local-volume-provider keeps resource and CSI backups working and restic backups restorable until 1.19, but kopia file-system backups fail`,
            'app-snapshots: spec.provider: to keep file-system backups, serve this volume over S3 with app-snapshots storage: provider aws, s3Url http(s)://<storage service>:9000, s3ForcePathStyle "true"',
          ],
        });
      }
    });
    it("is allowed on Velero 1.16, with the config checked", () => {
      expect(create(bsl("default", hostpath), [veleroDeployment("v1.16.2")])).toMatchObject({ allowed: true, warnings: [] });
      expect(create(bsl("default", { ...hostpath, config: { path: "snapshots" } }), [veleroDeployment("v1.16.2")]).message).toBe(
        prefix() + 'spec.config.path: must be an absolute path, not "snapshots"',
      );
      expect(create(bsl("default", { provider: "replicated.com/nfs", objectStorage: { bucket: "s" }, config: { path: "/exports" } }), [veleroDeployment("v1.16.2")]).message).toBe(
        prefix() + "spec.config.server: is required for replicated.com/nfs (the NFS server address)",
      );
      expect(create(bsl("default", { provider: "replicated.com/pvc", objectStorage: { bucket: "s" }, config: { storageSize: "50 GB" } }), [veleroDeployment("v1.16.2")]).message).toBe(
        prefix() + 'spec.config.storageSize: "50 GB" is not a Kubernetes quantity (e.g. 50Gi); local-volume-provider would crash parsing it',
      );
    });
    it("warns when the Velero version is unknown", () => {
      expect(create(bsl("default", hostpath)).warnings).toEqual([
        "app-snapshots: spec.provider: Velero version in velero unknown: from Velero 1.17 on, kopia file-system backups fail on local-volume-provider; serve the volume over S3 with app-snapshots storage",
      ]);
    });
    it("warns about a host path on several nodes unless marked shared", () => {
      const nodes = [veleroDeployment("v1.16.2"), node("a"), node("b"), node("c")];
      expect(create(bsl("default", hostpath), nodes).warnings).toEqual([
        `app-snapshots: spec.config.path: host path on 3 nodes: backups land on Velero's current node. Annotate appsnapshots.io/shared-storage: "true" if the path is shared`,
      ]);
      expect(create(bsl("default", hostpath, { annotations: { "appsnapshots.io/shared-storage": "true" } }), nodes).warnings).toEqual([]);
    });
  });

  describe("overlap", () => {
    const existing = bsl("primary", awsSpec({ objectStorage: { bucket: "backups", prefix: "cluster-a" } }));
    it("warns (and says what happens) about a second location on the same bucket and prefix in the same namespace", () => {
      expect(create(bsl("second", awsSpec()), [existing])).toEqual({
        allowed: true,
        code: undefined,
        message: "",
        warnings: [
          'app-snapshots: spec.objectStorage.prefix: bucket "backups" prefix "cluster-a" is also used by BackupStorageLocation velero/primary',
          "app-snapshots: spec.objectStorage.prefix: both locations list the same backups; none is overwritten (backup names are unique per namespace), and deleting one deletes it for both",
        ],
      });
      // A slash Velero trims does not hide the twin.
      expect(create(bsl("slashed", awsSpec({ objectStorage: { bucket: "backups", prefix: "/cluster-a/" } })), [existing]).warnings).toHaveLength(3);
    });
    it("denies the same place for two Velero installations (other namespaces), where equal backup names overwrite data", () => {
      const other = create(bsl("second", awsSpec(), { namespace: "velero-b" }), [existing]);
      expect(other.allowed).toBe(false);
      expect(other.message).toContain(
        'spec.objectStorage.prefix: bucket "backups" prefix "cluster-a" is also used by BackupStorageLocation velero/primary, of another Velero installation: backups of equal names',
      );
      expect(create(bsl("second", awsSpec({ accessMode: "ReadOnly" }), { namespace: "velero-b" }), [existing]).allowed).toBe(true);
    });
    it("denies a read-write location nested in another's prefix: Velero would mark the outer one Unavailable", () => {
      const nested = create(bsl("nested", awsSpec({ objectStorage: { bucket: "backups", prefix: "cluster-a/sub" } })), [existing]);
      expect(nested.message).toBe(
        prefix("nested") +
          'spec.objectStorage.prefix: bucket "backups" prefix "cluster-a/sub" lies inside the prefix "cluster-a" of BackupStorageLocation velero/primary: once this location writes, Velero finds an unknown top-level folder under "cluster-a" and marks velero/primary Unavailable, failing its backups. Use prefixes that do not nest',
      );
      expect(create(bsl("parent", awsSpec({ objectStorage: { bucket: "backups" } })), [existing]).message).toContain("once velero/primary writes, Velero finds an unknown top-level folder under \"\" and marks this location Unavailable");
      expect(create(bsl("nested-ro", awsSpec({ accessMode: "ReadOnly", objectStorage: { bucket: "backups", prefix: "cluster-a/sub" } })), [existing]).allowed).toBe(true);
    });
    it("allows a read-only twin with a warning, and distinct prefixes, endpoints or buckets freely", () => {
      const readOnly = create(bsl("restore-from", awsSpec({ accessMode: "ReadOnly" })), [existing]);
      expect(readOnly.allowed).toBe(true);
      expect(readOnly.warnings[0]).toContain("is also used by BackupStorageLocation velero/primary");
      expect(create(bsl("b", awsSpec({ objectStorage: { bucket: "backups", prefix: "cluster-ab" } })), [existing])).toMatchObject({ allowed: true, warnings: [] });
      expect(create(bsl("c", awsSpec({}, { s3Url: "http://other:9000" })), [existing])).toMatchObject({ allowed: true, warnings: [] });
      expect(create(bsl("d", awsSpec({ objectStorage: { bucket: "other", prefix: "cluster-a" } })), [existing])).toMatchObject({ allowed: true, warnings: [] });
    });
  });

  it("warns when a second location claims default", () => {
    const result = create(bsl("new", awsSpec({ default: true, objectStorage: { bucket: "b2x" } })), [bsl("old", awsSpec({ default: true }))]);
    expect(result.warnings).toEqual(["app-snapshots: spec.default: old is already the default; Velero keeps only the newest default and sets the others to false"]);
  });
});

describe("BackupStorageLocation updates and deletes", () => {
  const old = bsl("default", awsSpec({ default: true }));
  const backups = [1, 2, 3].map((i) => ({ apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: `b${i}`, namespace: NS }, spec: { storageLocation: "default" } }));
  const schedule = { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly", namespace: NS }, spec: { schedule: "0 2 * * *", template: { storageLocation: "default" } } };

  it("warns with the count when the data's place changes under existing backups", () => {
    const moved = bsl("default", awsSpec({ default: true, objectStorage: { bucket: "backups", prefix: "cluster-b" } }));
    const out = admit(veleroReview("BackupStorageLocation", "UPDATE", moved, old), veleroState([old, ...backups]), "velero").response;
    expect(out.allowed).toBe(true);
    expect(out.warnings).toEqual(["app-snapshots: spec.objectStorage: 3 backups reference this location and will no longer be found (provider, bucket, prefix or s3Url changed)"]);
  });

  it("lets Velero's status and default updates through, and never denies an update for a problem the object already had", () => {
    const broken = bsl("default", awsSpec({ default: true, accessMode: "RW" }));
    const statusOnly = { ...broken, status: { phase: "Unavailable" } };
    expect(admit(veleroReview("BackupStorageLocation", "UPDATE", statusOnly, broken), veleroState([broken]), "velero").response).toEqual({ uid: "b1", allowed: true });
    const notDefault = bsl("default", awsSpec({ default: false, accessMode: "RW" }));
    expect(admit(veleroReview("BackupStorageLocation", "UPDATE", notDefault, broken), veleroState([broken]), "velero").response).toEqual({ uid: "b1", allowed: true });
    const otherChange = bsl("default", awsSpec({ default: true, accessMode: "RW", backupSyncPeriod: "5m" }));
    const out = admit(veleroReview("BackupStorageLocation", "UPDATE", otherChange, broken), veleroState([broken]), "velero").response;
    expect(out.allowed).toBe(true);
    expect(out.warnings).toEqual(['app-snapshots: spec.accessMode: must be ReadOnly or ReadWrite, not "RW" (already so before this change)']);
    const newlyBroken = bsl("default", awsSpec({ default: true, accessMode: "RW" }));
    expect(admit(veleroReview("BackupStorageLocation", "UPDATE", newlyBroken, old), veleroState([old]), "velero").response.allowed).toBe(false);
  });

  it("never fails an update because a rule got stricter than when the object was stored", () => {
    // Stored before app-snapshots knew the plugin refuses unknown keys: still updatable (with the warning).
    const stored = bsl("default", awsSpec({}, { s3URL: "http://minio:9000" }));
    const edited = bsl("default", awsSpec({ backupSyncPeriod: "2m" }, { s3URL: "http://minio:9000" }));
    const out = admit(veleroReview("BackupStorageLocation", "UPDATE", edited, stored), veleroState([stored]), "velero").response;
    expect(out.allowed).toBe(true);
    expect(out.warnings?.[0]).toMatch(/^app-snapshots: spec\.config\.s3URL: is not a key velero-plugin-for-aws accepts/);
  });

  it("refuses (403) deleting a location Schedules use, unless allowed by annotation; warns for the default", () => {
    const out = admit(veleroReview("BackupStorageLocation", "DELETE", null, old), veleroState([old, schedule]), "velero").response;
    expect(out.allowed).toBe(false);
    expect(out.status).toEqual({
      code: 403,
      reason: "Forbidden",
      message: 'app-snapshots: BackupStorageLocation velero/default cannot be deleted: metadata.name: Schedule nightly still backs up to this location; change or delete them first, or annotate the location appsnapshots.io/allow-delete: "true"',
    });
    const allowed = { ...old, metadata: { ...old.metadata, annotations: { "appsnapshots.io/allow-delete": "true" } } };
    const ok = admit(veleroReview("BackupStorageLocation", "DELETE", null, allowed), veleroState([allowed, schedule]), "velero").response;
    expect(ok.allowed).toBe(true);
    expect(ok.warnings).toEqual([
      "app-snapshots: metadata.name: Schedule nightly still backs up to this location; deleted anyway (appsnapshots.io/allow-delete)",
      "app-snapshots: spec.default: this was the default location; Backups without storageLocation fail until another location is default",
    ]);
  });
});
