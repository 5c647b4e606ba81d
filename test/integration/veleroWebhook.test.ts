import { AdmissionregistrationV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeRequestError, kubeRequest } from "../../src/kube/request.js";
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
  webhook = await webhookProcess({ kubeconfigPath: cluster.kubeconfigPath });
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

  it("reads the credential Secret on demand (keys only) and rejects a missing key", async () => {
    const { message } = await rejection(create("backupstoragelocations", bsl("wrong-key", s3({ credential: { name: "cloud-credentials", key: "aws" }, objectStorage: { bucket: "other" } }))));
    expect(message).toContain(`spec.credential: Secret ${ns}/cloud-credentials has no key "aws" (it has: cloud)`);
  });

  it("sends warnings to the client and stores the object", async () => {
    const result = await create("backupstoragelocations", bsl("no-region", s3({ objectStorage: { bucket: "third" }, config: { s3Url: "http://127.0.0.1:9000" } })));
    expect(result.warnings).toEqual([
      "app-snapshots: spec.config.region: is not set; kopia then asks the server, but velero-plugin-for-aws >= 1.14.1 needs a region with s3Url: set any region the server accepts",
    ]);
  });

  it("rejects an overlapping read-write location once the first one is known", async () => {
    await until("the informer to hold the default location", async () => {
      try {
        await create("backupstoragelocations", bsl("twin", s3()), true);
        return undefined;
      } catch (err) {
        return (err as KubeRequestError).status === 422 ? true : undefined;
      }
    });
    const { message } = await rejection(create("backupstoragelocations", bsl("twin", s3())));
    expect(message).toContain(`bucket "backups" prefix "cluster-a" is also used by BackupStorageLocation ${ns}/default`);
  });

  it("denies local-volume-provider when the namespace runs Velero 1.18", async () => {
    await kubeRequest(kc, "POST", `/apis/apps/v1/namespaces/${ns}/deployments`, {
      metadata: { name: "velero" },
      spec: {
        selector: { matchLabels: { component: "velero" } },
        template: { metadata: { labels: { component: "velero" } }, spec: { containers: [{ name: "velero", image: "velero/velero:v1.18.2" }] } },
      },
    });
    const { message } = await rejection(create("backupstoragelocations", bsl("lvp", { provider: "replicated.com/hostpath", objectStorage: { bucket: "snapshots" }, config: { path: "/var/snapshots" } })));
    expect(message).toContain("spec.provider: Velero v1.18.2 in");
    expect(message).toContain("local-volume-provider cannot store kopia file-system backups");
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
});
