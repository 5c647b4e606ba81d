import { AdmissionregistrationV1Api, KubeConfig, type V1ValidatingWebhookConfiguration } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCa } from "../../../src/certs/authority.js";
import { applyObjects } from "../../../src/kube/apply.js";
import { KubeRequestError, kubeRequest } from "../../../src/kube/request.js";
import { getObject, renderChart } from "../../chart/helm.js";
import { identityKubeConfig } from "../../cluster/controlPlane.js";
import { freePort } from "../../cluster/processes.js";

/**
 * The chart's ValidatingWebhookConfiguration for Velero's objects, rendered by helm and applied to
 * the real kube-apiserver with its matchConditions unchanged, but pointed at a port where nothing
 * listens (failurePolicy Fail): every request the apiserver sends to the webhook fails. So what
 * passes here passes because the chart's CEL skipped the webhook, which is what keeps Velero
 * working while app-snapshots is down.
 */
const cluster = inject("cluster");
const admin = new KubeConfig();
admin.loadFromFile(cluster.kubeconfigPath);
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const ns = `velero-cel-${run}`;
const configName = `app-snapshots-velero-cel-${run}`;
/** Velero's ServiceAccounts as the chart's defaults name them (`velero install`, Velero's Helm chart), in this test's namespace. */
const asVelero = (name: string) => identityKubeConfig(cluster, `system:serviceaccount:${ns}:${name}`, ["system:serviceaccounts", "system:masters"]);

const path = (plural: string, name?: string) => `/apis/velero.io/v1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const location = (name: string, spec: object = {}) => ({
  apiVersion: "velero.io/v1",
  kind: "BackupStorageLocation",
  metadata: { name },
  // The AWS plugin refuses the key s3URL: the webhook, were it called, would deny it.
  spec: { provider: "aws", objectStorage: { bucket: "backups", prefix: name }, config: { region: "us-east-1", s3URL: "http://minio:9000" }, ...spec },
});
const backup = (name: string, status?: object) => ({ apiVersion: "velero.io/v1", kind: "Backup", metadata: { name }, spec: { storageLocation: "nowhere" }, ...(status ? { status } : {}) });

/** The apiserver's answer when it had to call the (absent) webhook. */
async function webhookCalled(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the apiserver stored the object without calling the webhook").toBeInstanceOf(KubeRequestError);
  const message = ((err as KubeRequestError).body as { message: string }).message;
  expect(message).toContain('failed calling webhook "velero.appsnapshots.io"');
  return message;
}

beforeAll(async () => {
  await kubeRequest(admin, "POST", "/api/v1/namespaces", { metadata: { name: ns, labels: { "appsnapshots-test": run } } });
  const objects = await renderChart({ namespace: "app-snapshots", set: { "storage.enabled": "false", "velero.namespace": ns } });
  const rendered = getObject<V1ValidatingWebhookConfiguration>(objects, "ValidatingWebhookConfiguration", "app-snapshots-velero");
  const webhook = rendered.webhooks![0]!;
  expect(webhook.failurePolicy).toBe("Fail");
  expect(webhook.matchConditions?.map((c) => c.name)).toEqual(["not-velero-service-account", "spec-changed", "not-created-with-phase"]);
  const caPem = createCa({ commonName: "nobody-listens", validityDays: 1 }).certPem;
  const deadPort = await freePort();
  const dead: V1ValidatingWebhookConfiguration = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: configName },
    webhooks: [
      {
        ...webhook,
        clientConfig: { url: `https://127.0.0.1:${deadPort}/validate/velero`, caBundle: Buffer.from(caPem).toString("base64") },
        timeoutSeconds: 2,
        // Only this test's namespace: other tests share the control plane.
        namespaceSelector: { matchLabels: { "appsnapshots-test": run } },
      },
    ],
  };
  await applyObjects(admin, [dead]);
  // The configuration is live once a person's request reaches the (absent) webhook.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await kubeRequest(admin, "POST", `${path("backupstoragelocations")}?dryRun=All`, location("probe"));
    } catch (err) {
      if (String((err as Error).message).includes("failed calling webhook")) break;
    }
    if (Date.now() > deadline) throw new Error("the webhook configuration never took effect");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 90_000);

afterAll(async () => {
  await admin.makeApiClient(AdmissionregistrationV1Api).deleteValidatingWebhookConfiguration({ name: configName }).catch(() => undefined);
  await kubeRequest(admin, "DELETE", `/api/v1/namespaces/${ns}`).catch(() => undefined);
});

describe("the chart's matchConditions keep Velero working while the webhook is down (failurePolicy Fail)", () => {
  it("sends a person's requests to the webhook: with the webhook down they fail", async () => {
    await webhookCalled(kubeRequest(admin, "POST", path("backupstoragelocations"), location("by-a-person")));
    await webhookCalled(kubeRequest(admin, "POST", path("backups"), backup("by-a-person")));
  });

  it("lets every request of Velero's ServiceAccounts through, whichever installer named them", async () => {
    for (const name of ["velero", "velero-server"]) {
      const velero = asVelero(name);
      await kubeRequest(velero, "POST", path("backupstoragelocations"), location(`made-by-${name}`));
      await kubeRequest(velero, "POST", path("backups"), backup(`made-by-${name}`));
      const patched = await kubeRequest(velero, "PATCH", path("backups", `made-by-${name}`), { spec: { ttl: "1h0m0s" } }, "application/merge-patch+json");
      expect((patched.body as { spec: { ttl: string } }).spec.ttl).toBe("1h0m0s");
    }
    // Another namespace's "velero" is not Velero.
    const other = identityKubeConfig(cluster, "system:serviceaccount:elsewhere:velero", ["system:masters"]);
    await webhookCalled(kubeRequest(other, "POST", path("backups"), backup("by-another-velero")));
  });

  it("lets an UPDATE that leaves spec alone through (Velero's status writes), but not a spec change", async () => {
    const status = await kubeRequest(admin, "PATCH", path("backupstoragelocations", "made-by-velero"), { status: { phase: "Unavailable", message: "down" } }, "application/merge-patch+json");
    expect((status.body as { status: { phase: string } }).status.phase).toBe("Unavailable");
    const labels = await kubeRequest(admin, "PATCH", path("backups", "made-by-velero"), { metadata: { labels: { "velero.io/storage-location": "nowhere" } }, status: { phase: "Completed" } }, "application/merge-patch+json");
    expect((labels.body as { status: { phase: string } }).status.phase).toBe("Completed");
    await webhookCalled(kubeRequest(admin, "PATCH", path("backupstoragelocations", "made-by-velero"), { spec: { accessMode: "ReadOnly" } }, "application/merge-patch+json"));
  });

  it("lets a Backup created with status.phase set through (backup sync in a DR cluster), and a Restore too", async () => {
    const synced = await kubeRequest(admin, "POST", path("backups"), backup("synced-from-storage", { phase: "Completed" }));
    expect((synced.body as { status: { phase: string } }).status.phase).toBe("Completed");
    await kubeRequest(admin, "POST", path("restores"), { apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "done" }, spec: { backupName: "gone" }, status: { phase: "Completed" } });
    await webhookCalled(kubeRequest(admin, "POST", path("backups"), backup("new-one", {})));
    // Phases Velero still starts as new work are judged.
    for (const phase of ["New", "Queued"]) await webhookCalled(kubeRequest(admin, "POST", path("backups"), backup(`new-${phase.toLowerCase()}`, { phase })));
    // A Schedule is never synced: a phase written into one is no sign of Velero.
    await webhookCalled(
      kubeRequest(admin, "POST", path("schedules"), { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "s" }, spec: { schedule: "0 2 * * *", template: {} }, status: { phase: "Enabled" } }),
    );
  });

  it("still sends deletes of locations to the webhook", async () => {
    await webhookCalled(kubeRequest(admin, "DELETE", path("backupstoragelocations", "made-by-velero")));
  });
});
