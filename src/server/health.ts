import express from "express";
import type { Registry } from "prom-client";
import type { Lifecycle } from "./lifecycle.js";
import { listenAt } from "./listenAddress.js";
import type { RunningServer } from "./http.js";

/** The plain-HTTP port for probes and scraping, separate from the TLS port so probes never depend on certificates. */
export function healthApp(lifecycle: Lifecycle, registry: Registry): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok\n");
  });
  app.get("/readyz", (_req, res) => {
    const { ready, failing } = lifecycle.readiness();
    res
      .status(ready ? 200 : 503)
      .type("text/plain")
      .send(ready ? "ok\n" : `not ready: ${failing.join(", ")}\n`);
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return app;
}

/** No host means every interface (`--health-listen=:8080`): the kubelet probes the pod IP, not loopback. */
export async function serveHealth(lifecycle: Lifecycle, registry: Registry, port: number, host?: string): Promise<RunningServer> {
  const server = await listenAt({ host: host || undefined, port }, { handler: healthApp(lifecycle, registry) });
  lifecycle.setHealthServer(server);
  return server;
}
