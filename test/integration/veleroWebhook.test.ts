import https from "node:https";
import { AdmissionregistrationV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeRequestError, kubeRequest } from "../../src/kube/request.js";
import { identityKubeConfig } from "../cluster/controlPlane.js";
import { admissionReview } from "../cluster/reviews.js";
import { until } from "../cluster/wait.js";
import { applyVeleroValidatingWebhook, webhookProcess, type WebhookProcess } from "../cluster/webhook.js";

const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const ns = `velero-${run}`;
const configName = `app-snapshots-velero-${run}`;
let webhook: WebhookProcess;

const path = (plural: string, name?: string) => `/apis/velero.io/v1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const bsl = (name: string, spec: object) => ({ apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name, namespace: ns }, spec });
const s3 = (extra: object = {}, config: object = {}) => ({
  provider: "aws",
  objectStorage: { bucket: "backups", prefix: "cluster-a" },
  config: { region: "minio", s3Url: "http://127.0.0.1:9000", s3ForcePathStyle: "true", ...config },
  credential: { name: "cloud-credentials", key: "cloud" },
  ...extra,
});
const create = (plural: string, body: object, dryRun = false) => kubeRequest(kc, "POST", path(plural) + (dryRun ? "?dryRun=All" : ""), body);
const rejection = async (promise: Promise<unknown>) => {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the apiserver accepted what the webhook should reject").toBeInstanceOf(KubeRequestError);
  return { status: (err as KubeRequestError).status, message: ((err as KubeRequestError).body as { message: string }).message };
};

beforeAll(async () => {
  await kubeRequest(kc, "POST", "/api/v1/namespaces", { metadata: { name: ns, labels: { "appsnapshots-test": run } } });
  await kubeRequest(kc, "POST", `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "cloud-credentials" }, stringData: { cloud: "[default]\naws_access_key_id=a\naws_secret_access_key=b\n" } });
  webhook = await webhookProcess({
    kubeconfigPath: cluster.kubeconfigPath,
    // As the chart passes them: Velero's ServiceAccount (here in this test's namespace) and the opt-in Secret reads.
    extraArgs: [`--velero-service-account=system:serviceaccount:${ns}:velero`, "--check-velero-secret-keys"],
  });
  await webhook.start();
  await applyVeleroValidatingWebhook(kc, { name: configName, url: `${webhook.url}/validate/velero`, caPem: webhook.caPem, namespaceSelector: { matchLabels: { "appsnapshots-test": run } } });
  await until("the Velero webhook to reject a broken location", async () => {
    try {
      await create("backupstoragelocations", bsl("probe", s3({ objectStorage: { bucket: "a/b" } })), true);
      return undefined;
    } catch (err) {
      return String((err as KubeRequestError).message).includes("app-snapshots") ? true : undefined;
    }
  });
}, 60_000);

afterAll(async () => {
  await kc.makeApiClient(AdmissionregistrationV1Api).deleteValidatingWebhookConfiguration({ name: configName }).catch(() => undefined);
  await webhook?.dispose();
});

describe("Velero admission through the real kube-apiserver (upstream Velero CRDs)", () => {
  it("stores a valid location and rejects a broken one with the message visible to the client", async () => {
    const stored = await create("backupstoragelocations", bsl("default", s3({ default: true })));
    expect(stored.warnings).toEqual([]);
    const { status, message } = await rejection(create("backupstoragelocations", bsl("broken", s3({ objectStorage: { bucket: "backups/cluster-b" } }))));
    expect(status).toBe(422);
    expect(message).toContain(`app-snapshots: BackupStorageLocation ${ns}/broken is invalid: spec.objectStorage.bucket: "backups/cluster-b" must not contain "/"`);
  });

  it("with --check-velero-secret-keys reads the credential Secret on demand (keys only) and warns about a missing key (it may be fixed later)", async () => {
    const result = await create("backupstoragelocations", bsl("wrong-key", s3({ credential: { name: "cloud-credentials", key: "aws" }, objectStorage: { bucket: "other" } })), true);
    expect(result.warnings).toEqual([
      `app-snapshots: spec.credential: credential Secret ${ns}/cloud-credentials has no key "aws" (it has: cloud); the location stays Unavailable until it does`,
    ]);
    expect((await create("backupstoragelocations", bsl("right-key", s3({ objectStorage: { bucket: "other" } })), true)).warnings).toEqual([]);
  });

  it("sends warnings to the client and stores the object", async () => {
    const result = await create("backupstoragelocations", bsl("no-region", s3({ objectStorage: { bucket: "third" }, config: { s3Url: "http://127.0.0.1:9000" } })));
    expect(result.warnings).toEqual(["app-snapshots: spec.config.region: is not set; with s3Url, velero-plugin-for-aws >= 1.14.1 needs one: set any region the server accepts (e.g. us-east-1)"]);
  });

  it("rejects a typo in a config key the AWS plugin would refuse, naming the key that was meant", async () => {
    const { status, message } = await rejection(create("backupstoragelocations", bsl("typo", s3({ objectStorage: { bucket: "fourth" }, config: { region: "us-east-1", s3URL: "http://127.0.0.1:9000" } }))));
    expect(status).toBe(422);
    expect(message).toContain("spec.config.s3URL: is not a key velero-plugin-for-aws accepts, and it refuses unknown keys (the location stays Unavailable); did you mean s3Url?");
  });

  it("rejects a read-write location nested in another's prefix once the first one is known, and warns about a twin", async () => {
    const nested = bsl("nested", s3({ objectStorage: { bucket: "backups", prefix: "cluster-a/sub" } }));
    await until("the informer to hold the default location", async () => {
      try {
        await create("backupstoragelocations", nested, true);
        return undefined;
      } catch (err) {
        return (err as KubeRequestError).status === 422 ? true : undefined;
      }
    });
    const { message } = await rejection(create("backupstoragelocations", nested));
    expect(message).toContain(`bucket "backups" prefix "cluster-a/sub" lies inside the prefix "cluster-a" of BackupStorageLocation ${ns}/default`);
    const twin = await create("backupstoragelocations", bsl("twin", s3()), true);
    expect(twin.warnings).toContain(`app-snapshots: spec.objectStorage.prefix: bucket "backups" prefix "cluster-a" is also used by BackupStorageLocation ${ns}/default`);
  });

  it("warns (does not deny) about local-volume-provider when the namespace runs Velero 1.18", async () => {
    await kubeRequest(kc, "POST", `/apis/apps/v1/namespaces/${ns}/deployments`, {
      metadata: { name: "velero" },
      spec: {
        selector: { matchLabels: { component: "velero" } },
        template: { metadata: { labels: { component: "velero" } }, spec: { containers: [{ name: "velero", image: "velero/velero:v1.18.2" }] } },
      },
    });
    const result = await create("backupstoragelocations", bsl("lvp", { provider: "replicated.com/hostpath", objectStorage: { bucket: "snapshots" }, config: { path: "/var/snapshots" } }));
    expect(result.warnings).toEqual([
      "app-snapshots: spec.provider: on Velero v1.18.2 local-volume-provider keeps resource and CSI backups working and restic backups restorable until 1.19, but kopia file-system backups fail",
      'app-snapshots: spec.provider: to keep file-system backups, serve this volume over S3 with app-snapshots storage: provider aws, s3Url http(s)://<storage service>:9000, s3ForcePathStyle "true"',
    ]);
  });

  it("passes a Backup created Completed (backup sync in a DR cluster) although its location does not exist here", async () => {
    const synced = {
      apiVersion: "velero.io/v1",
      kind: "Backup",
      metadata: { name: "synced-1", labels: { "velero.io/schedule-name": "nightly", "velero.io/storage-location": "primary" } },
      spec: { storageLocation: "primary", includedNamespaces: ["shop"], ttl: "720h0m0s" },
      status: { phase: "Completed", formatVersion: "1.1.0" },
    };
    const stored = await create("backups", synced);
    expect(stored.warnings).toEqual([]);
    // The same object without a phase is a person's new Backup: denied (Velero would fail it at once).
    const { message } = await rejection(create("backups", { ...synced, metadata: { name: "fresh-1" }, status: undefined }));
    expect(message).toContain(`spec.storageLocation: BackupStorageLocation ${ns}/primary does not exist`);
  });

  it("passes every request of Velero's ServiceAccount (--velero-service-account), and its status updates by anyone", async () => {
    const velero = identityKubeConfig(cluster, `system:serviceaccount:${ns}:velero`, ["system:serviceaccounts", "system:masters"]);
    const invalid = { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "by-velero" }, spec: { storageLocation: "nope" } };
    const stored = await kubeRequest(velero, "POST", path("backups"), invalid);
    expect(stored.warnings).toEqual([]);
    // Invalid now, but the update leaves spec alone: it passes for a person too.
    const patched = await kubeRequest(kc, "PATCH", path("backups", "by-velero"), { status: { phase: "FailedValidation", validationErrors: ["no location"] } }, "application/merge-patch+json");
    expect((patched.body as { status: { phase: string } }).status.phase).toBe("FailedValidation");
    // A person's change to spec is judged.
    await rejection(kubeRequest(kc, "PATCH", path("backups", "by-velero"), { spec: { storageLocation: "still-nope" } }, "application/merge-patch+json"));
  });

  it("checks Backups, Schedules and Restores against the locations and backups", async () => {
    expect((await rejection(create("backups", { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "b-missing" }, spec: { storageLocation: "nope" } }))).message).toContain(
      `spec.storageLocation: BackupStorageLocation ${ns}/nope does not exist`,
    );
    await create("backups", { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "b1" }, spec: { storageLocation: "default", includedNamespaces: ["shop"] } });
    expect((await rejection(create("schedules", { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "s-bad" }, spec: { schedule: "every night", template: {} } }))).message).toContain(
      'spec.schedule: "every night" is not a valid schedule: expected 5 fields',
    );
    await create("schedules", { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "nightly" }, spec: { schedule: "0 2 * * *", template: { storageLocation: "default" } } });
    expect((await rejection(create("restores", { apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "r1" }, spec: { backupName: "nope" } }))).message).toContain(
      `spec.backupName: Backup ${ns}/nope does not exist`,
    );
  });

  it("refuses (403) to delete a location a Schedule uses", async () => {
    await until("the informer to hold the schedule", async () => {
      try {
        await kubeRequest(kc, "DELETE", `${path("backupstoragelocations", "default")}?dryRun=All`);
        return undefined;
      } catch (err) {
        return (err as KubeRequestError).status === 403 ? true : undefined;
      }
    });
    const { status, message } = await rejection(kubeRequest(kc, "DELETE", path("backupstoragelocations", "default")));
    expect(status).toBe(403);
    expect(message).toContain("metadata.name: Schedule nightly still backs up to this location");
  });

  it("lets status updates through even for a location that is broken now", async () => {
    await kubeRequest(kc, "DELETE", `/api/v1/namespaces/${ns}/secrets/cloud-credentials`);
    const patched = await kubeRequest(kc, "PATCH", path("backupstoragelocations", "default"), { status: { phase: "Unavailable", message: "test" } }, "application/merge-patch+json");
    expect((patched.body as { status: { phase: string } }).status.phase).toBe("Unavailable");
  });

  it("without --check-velero-secret-keys reads no Secret and says the keys were not checked", async () => {
    const plain = await webhookProcess({ kubeconfigPath: cluster.kubeconfigPath });
    try {
      await plain.start();
      const object = bsl("unchecked", s3({ credential: { name: "cloud-credentials", key: "aws" }, objectStorage: { bucket: "fifth" } }));
      const review = admissionReview({ group: "velero.io", kind: "BackupStorageLocation", resource: "backupstoragelocations", namespace: ns, name: "unchecked", operation: "CREATE", object });
      const body = JSON.stringify(review);
      const answer = await new Promise<string>((resolve, reject) => {
        const req = https.request(`${plain.url}/validate/velero`, { method: "POST", ca: plain.caPem, headers: { "content-type": "application/json" } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve(Buffer.concat(chunks).toString()));
        });
        req.on("error", reject);
        req.end(body);
      });
      const response = (JSON.parse(answer) as { response: { allowed: boolean; warnings?: string[] } }).response;
      expect(response.allowed).toBe(true);
      expect(response.warnings).toEqual([
        `app-snapshots: spec.credential: credential Secret ${ns}/cloud-credentials not checked: app-snapshots does not read Secrets unless webhook.velero.checkSecretKeys is true`,
      ]);
    } finally {
      await plain.dispose();
    }
  });
});
