import http from "node:http";
import tls from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../cluster/controlPlane.js";
import { installAppSnapshotsCrds } from "../cluster/crds.js";
import { webhookProcess, type WebhookProcess } from "../cluster/webhook.js";

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
