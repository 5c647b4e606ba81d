import http from "node:http";
import tls from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../cluster/controlPlane.js";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { installAppSnapshotsCrds, installVeleroCrds } from "../cluster/crds.js";
import { until } from "../cluster/wait.js";
import { applyVeleroValidatingWebhook, webhookProcess, type WebhookProcess } from "../cluster/webhook.js";

let plane: ControlPlane | undefined;
let webhook: WebhookProcess | undefined;
let everywhere: WebhookProcess | undefined;
afterAll(async () => {
  await everywhere?.dispose();
  await webhook?.dispose();
  await plane?.stop();
});

const get = (url: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.get(url, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });

describe("webhook readiness on a cluster without Velero", () => {
  it("becomes ready when the Velero CRDs are not installed (they count as empty)", async () => {
    // A control plane of its own: the shared one has the Velero CRDs installed.
    plane = await startControlPlane();
    await installAppSnapshotsCrds(plane.kubeConfig);
    webhook = await webhookProcess({ kubeconfigPath: plane.kubeconfigPath });
    await webhook.start(); // resolves only once /readyz answers 200
    expect(await get(`${webhook.healthUrl}/readyz`)).toEqual({ status: 200, body: "ok\n" });
    expect((await get(`${webhook.healthUrl}/metrics`)).body).toMatch(/app_snapshots_policies_loaded\{kind="SnapshotPolicy"\} 0/);
  }, 90_000);

  it("does not deny Velero objects for what it has not listed yet when Velero is installed after it (Helm or velero install after our chart)", async () => {
    if (!plane || !webhook) throw new Error("the control plane of the first test did not start");
    await applyVeleroValidatingWebhook(plane.kubeConfig, { name: "app-snapshots-velero-late", url: `${webhook.url}/validate/velero`, caPem: webhook.caPem, failurePolicy: "Fail" });
    await installVeleroCrds(plane.kubeConfig);
    const objects = plane.kubeConfig.makeApiClient(CustomObjectsApi);
    await plane.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: "velero" } } });
    const create = (plural: string, body: object) => objects.createNamespacedCustomObject({ group: "velero.io", version: "v1", namespace: "velero", plural, body });
    const location = {
      apiVersion: "velero.io/v1",
      kind: "BackupStorageLocation",
      metadata: { name: "default", namespace: "velero" },
      spec: { default: true, provider: "aws", objectStorage: { bucket: "velero" }, config: { region: "us-east-1", s3Url: "http://storage.example:9000", s3ForcePathStyle: "true" } },
    };
    const backup = (name: string, spec: object) => ({ apiVersion: "velero.io/v1", kind: "Backup", metadata: { name, namespace: "velero" }, spec });
    // Moments after the CRDs appear: the webhook's informers last saw them missing (their retry is 30 s away).
    await until("the BackupStorageLocation created (its CRD established)", async () => (await create("backupstoragelocations", location)) as object, 30_000, 250);
    await create("backups", backup("right-after-install", {}));
    // Its first Velero request made it list at once: a Backup to a location that does not exist is denied again.
    const denial = await until("a Backup to a missing location denied", async () => {
      try {
        await create("backups", backup(`to-nowhere-${Date.now()}`, { storageLocation: "nope" }));
        return undefined;
      } catch (err) {
        return (err as { body?: unknown }).body === undefined ? String(err) : JSON.stringify((err as { body?: unknown }).body);
      }
    }, 60_000, 500);
    expect(denial).toContain("BackupStorageLocation velero/nope does not exist");
  }, 120_000);

  it("with the chart's --host= listens on every interface, IPv6 and IPv4: an IPv6-only cluster reaches the pod too", async () => {
    if (!plane) throw new Error("the control plane of the test before did not start");
    everywhere = await webhookProcess({ kubeconfigPath: plane.kubeconfigPath, extraArgs: ["--host="] });
    await everywhere.start();
    const healthPort = new URL(everywhere.healthUrl).port;
    const port = Number(new URL(everywhere.url).port);
    for (const host of ["127.0.0.1", "::1"]) {
      expect((await get(`http://${host.includes(":") ? `[${host}]` : host}:${healthPort}/readyz`)).status).toBe(200);
      // A TLS handshake with the admission port (the test certificate names 127.0.0.1 only, so no verification here).
      const protocol = await new Promise<string | null>((resolve, reject) => {
        const socket = tls.connect({ host, port, rejectUnauthorized: false }, () => {
          resolve(socket.getProtocol());
          socket.end();
        });
        socket.once("error", reject);
      });
      expect(protocol).toMatch(/^TLSv1\.[23]$/);
    }
  }, 60_000);
});
