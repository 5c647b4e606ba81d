import http from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../cluster/controlPlane.js";
import { installAppSnapshotsCrds } from "../cluster/crds.js";
import { webhookProcess, type WebhookProcess } from "../cluster/webhook.js";

let plane: ControlPlane | undefined;
let webhook: WebhookProcess | undefined;
afterAll(async () => {
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
});
