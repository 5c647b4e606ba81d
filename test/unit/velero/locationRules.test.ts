import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { createCa } from "../../../src/certs/authority.js";
import { awsSpec, bsl, node, NS, secret, veleroDeployment, veleroReview, veleroState } from "./support.js";

/** Denial message and warnings for creating `object` in `objects`' cluster. */
function create(object: ReturnType<typeof bsl>, objects: unknown[] = []) {
  const out = admit(veleroReview("BackupStorageLocation", "CREATE", object), veleroState(objects), "velero").response;
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
    ["prefix with a leading slash", awsSpec({ objectStorage: { bucket: "backups", prefix: "/a" } }), 'spec.objectStorage.prefix: "/a" must not start with "/"'],
    ["caCert and caCertRef", awsSpec({ objectStorage: { bucket: "b1x", caCert: "eA==", caCertRef: { name: "ca", key: "ca.crt" } } }), "spec.objectStorage.caCert: and caCertRef are both set; use only caCertRef (caCert is deprecated); spec.objectStorage.caCertRef: Secret velero/ca does not exist; create it before the location (Velero cannot validate a location without it)"],
    ["caCert that is no certificate", awsSpec({ objectStorage: { bucket: "b1x", caCert: Buffer.from("hello").toString("base64") } }), "spec.objectStorage.caCert: holds no PEM certificate (it must be the base64 of one or more -----BEGIN CERTIFICATE----- blocks)"],
    ["bad accessMode", awsSpec({ accessMode: "readwrite" }), 'spec.accessMode: must be ReadOnly or ReadWrite, not "readwrite"'],
    ["bad backupSyncPeriod", awsSpec({ backupSyncPeriod: "1 minute" }), 'spec.backupSyncPeriod: "1 minute" is not a duration (e.g. 1m, 30s, 1h)'],
    ["missing credential Secret", awsSpec({ credential: { name: "nope", key: "cloud" } }), "spec.credential: Secret velero/nope does not exist; create it before the location (Velero cannot validate a location without it)"],
    ["credential key missing", awsSpec({ credential: { name: "cloud-credentials", key: "aws" } }), 'spec.credential: Secret velero/cloud-credentials has no key "aws" (it has: cloud)'],
    ["AWS without region or s3Url", awsSpec({ config: {} }), "spec.config.region: is required for AWS S3 (set s3Url for other S3-compatible storage)"],
    ["s3Url with a path", awsSpec({}, { s3Url: "http://minio:9000/backups" }), 'spec.config.s3Url: "http://minio:9000/backups" has a path or query; use http(s)://host[:port] (kopia rejects a path in s3Url)'],
    ["s3Url without scheme", awsSpec({}, { s3Url: "minio:9000" }), 'spec.config.s3Url: "minio:9000" must start with http:// or https://'],
    ["publicUrl not a URL", awsSpec({}, { publicUrl: "not a url" }), 'spec.config.publicUrl: "not a url" is not a URL; use http(s)://host[:port]'],
    ["s3ForcePathStyle yes", awsSpec({}, { s3ForcePathStyle: "yes" }), 'spec.config.s3ForcePathStyle: must be "true" or "false", not "yes"'],
    ["checksumAlgorithm MD5", awsSpec({}, { checksumAlgorithm: "MD5" }), 'spec.config.checksumAlgorithm: must be one of "", CRC32, CRC32C, CRC64NVME, SHA1, SHA256; not "MD5"'],
    ["serverSideEncryption kms", awsSpec({}, { serverSideEncryption: "kms" }), 'spec.config.serverSideEncryption: must be AES256 or aws:kms, not "kms"'],
    ["kmsKeyId without aws:kms", awsSpec({}, { serverSideEncryption: "AES256", kmsKeyId: "k1" }), 'spec.config.kmsKeyId: needs serverSideEncryption: "aws:kms"'],
    ["real-AWS bucket naming", { provider: "aws", objectStorage: { bucket: "My_Backups" }, config: { region: "eu-west-1" } }, "spec.objectStorage.bucket: may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit (S3 bucket naming)"],
    ["azure without storageAccount", { provider: "azure", objectStorage: { bucket: "velero" }, config: { resourceGroup: "rg" } }, "spec.config.storageAccount: is required for velero.io/azure"],
  ])("denies %s with 422 and a message naming the field", (_name, spec, finding) => {
    const result = create(bsl("default", spec));
    expect(result.allowed).toBe(false);
    expect(result.code).toBe(422);
    expect(result.message).toBe(prefix() + finding);
  });

  it.each([
    ["a trailing slash on prefix", awsSpec({ objectStorage: { bucket: "backups", prefix: "a/" } }), 'spec.objectStorage.prefix: "a/": Velero trims the trailing "/"; write "a"'],
    ["config.prefix", awsSpec({}, { prefix: "x" }), "spec.config.prefix: is ignored: Velero overwrites it with spec.objectStorage.prefix (velero#8918)"],
    ["s3Url without region", awsSpec({ config: { s3Url: "http://minio:9000" } }), "spec.config.region: is not set; kopia then asks the server, but velero-plugin-for-aws >= 1.14.1 needs a region with s3Url: set any region the server accepts"],
    ["an S3-compatible bucket AWS would refuse", awsSpec({ objectStorage: { bucket: "Backups" } }), "spec.objectStorage.bucket: may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit by AWS rules; fine if your server allows it"],
    ["an unknown provider", { provider: "example.com/local", objectStorage: { bucket: "b" } }, "spec.provider: example.com/local is not a provider app-snapshots knows; its config was not checked"],
    ["azure without resourceGroup", { provider: "azure", objectStorage: { bucket: "velero" }, config: { storageAccount: "sa" } }, "spec.config.resourceGroup: is not set; the Azure plugin needs it unless the storage account key or a workload identity is used"],
    ["a negative validationFrequency", awsSpec({ validationFrequency: "-1m" }), "spec.validationFrequency: is negative; Velero then uses its default"],
  ])("allows %s with a warning", (_name, spec, warning) => {
    const result = create(bsl("default", spec));
    expect(result.allowed).toBe(true);
    expect(result.warnings).toEqual([`app-snapshots: ${warning}`]);
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

  it("checks caCertRef against the Secrets", () => {
    const spec = awsSpec({ objectStorage: { bucket: "b1x", caCertRef: { name: "storage-ca", key: "ca.crt" } } });
    expect(create(bsl("default", spec)).message).toBe(prefix() + "spec.objectStorage.caCertRef: Secret velero/storage-ca does not exist; create it before the location (Velero cannot validate a location without it)");
    expect(create(bsl("default", spec), [secret("storage-ca", ["ca.crt"])]).allowed).toBe(true);
  });

  describe("local-volume-provider", () => {
    const hostpath = { provider: "replicated.com/hostpath", objectStorage: { bucket: "snapshots" }, config: { path: "/var/snapshots" } };
    it("is denied on Velero 1.17+ (pre-releases count), pointing to app-snapshots storage over S3", () => {
      for (const tag of ["v1.18.2", "v1.17.0-rc.1"]) {
        const result = create(bsl("default", hostpath), [veleroDeployment(tag)]);
        expect(result.allowed).toBe(false);
        expect(result.message).toContain(`spec.provider: Velero ${tag} in velero: local-volume-provider cannot store kopia file-system backups`);
        expect(result.message).toContain("provider: velero.io/aws, config.s3Url");
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
        "app-snapshots: spec.provider: Velero version in velero unknown: on Velero >= 1.17 local-volume-provider cannot hold kopia volume data; serve the volume over S3 with app-snapshots storage",
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
    it("denies a second read-write location on the same bucket and prefix, or a nested prefix", () => {
      const same = create(bsl("second", awsSpec()), [existing]);
      expect(same.message).toBe(
        prefix("second") +
          'spec.objectStorage.prefix: bucket "backups" prefix "cluster-a" is also used by BackupStorageLocation velero/primary; two read-write locations there overwrite each other\'s backups, and Velero marks a location Unavailable when unknown top-level folders appear. Use a distinct prefix, or accessMode: ReadOnly for one',
      );
      expect(create(bsl("nested", awsSpec({ objectStorage: { bucket: "backups", prefix: "cluster-a/sub" } })), [existing]).allowed).toBe(false);
      expect(create(bsl("parent", awsSpec({ objectStorage: { bucket: "backups" } })), [existing]).allowed).toBe(false);
    });
    it("allows a read-only twin with a warning, and distinct prefixes, endpoints or buckets freely", () => {
      const readOnly = create(bsl("restore-from", awsSpec({ accessMode: "ReadOnly" })), [existing]);
      expect(readOnly.allowed).toBe(true);
      expect(readOnly.warnings[0]).toContain("(one of them is ReadOnly, as for a migration or restore)");
      expect(create(bsl("b", awsSpec({ objectStorage: { bucket: "backups", prefix: "cluster-ab" } })), [existing]).allowed).toBe(true);
      expect(create(bsl("c", awsSpec({}, { s3Url: "http://other:9000" })), [existing]).allowed).toBe(true);
      expect(create(bsl("d", awsSpec({ objectStorage: { bucket: "other", prefix: "cluster-a" } })), [existing]).allowed).toBe(true);
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
    const broken = bsl("default", { ...awsSpec({ default: true }), credential: { name: "gone", key: "cloud" } });
    const statusOnly = { ...broken, status: { phase: "Unavailable" } };
    expect(admit(veleroReview("BackupStorageLocation", "UPDATE", statusOnly, broken), veleroState([broken]), "velero").response.allowed).toBe(true);
    const notDefault = bsl("default", { ...awsSpec({ default: false }), credential: { name: "gone", key: "cloud" } });
    expect(admit(veleroReview("BackupStorageLocation", "UPDATE", notDefault, broken), veleroState([broken]), "velero").response.allowed).toBe(true);
    const otherChange = bsl("default", { ...awsSpec({ default: true, backupSyncPeriod: "5m" }), credential: { name: "gone", key: "cloud" } });
    const out = admit(veleroReview("BackupStorageLocation", "UPDATE", otherChange, broken), veleroState([broken]), "velero").response;
    expect(out.allowed).toBe(true);
    expect(out.warnings?.[0]).toMatch(/spec.credential: Secret velero\/gone does not exist; .* \(already so before this change\)$/);
    const newlyBroken = bsl("default", awsSpec({ default: true, accessMode: "RW" }));
    expect(admit(veleroReview("BackupStorageLocation", "UPDATE", newlyBroken, old), veleroState([old]), "velero").response.allowed).toBe(false);
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
