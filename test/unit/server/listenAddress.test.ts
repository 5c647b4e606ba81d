import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { serveHealth } from "../../../src/server/health.js";
import { Lifecycle } from "../../../src/server/lifecycle.js";
import { createLogger } from "../../../src/server/logger.js";
import { createMetricsRegistry } from "../../../src/server/metrics.js";
import { bindHosts, listenAt, parseListenAddress } from "../../../src/server/listenAddress.js";

const log = createLogger({ level: "silent", pretty: false });
const WILDCARDS = ["::", "0.0.0.0"];

function status(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path: "/healthz", agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on("error", reject);
  });
}

describe("listen addresses", () => {
  it.each([
    [":8080", ["::", "0.0.0.0"]],
    ["8080", ["::", "0.0.0.0"]],
    ["127.0.0.1:8080", ["127.0.0.1"]],
    ["[::1]:8080", ["::1"]],
    ["0.0.0.0:8080", ["0.0.0.0"]],
  ])("%s binds %j, as Go's net.Listen does", (text, hosts) => {
    expect(bindHosts(parseListenAddress(text))).toEqual(hosts);
  });

  it("an empty host listens on every interface, not loopback", async () => {
    const server = await listenAt(parseListenAddress(":0"), { handler: (_req, res) => res.end() });
    try {
      expect(WILDCARDS).toContain((server.server.address() as AddressInfo).address);
    } finally {
      await server.close(0);
    }
  });

  // The chart's storage Deployment passes --health-listen=:8080, and the kubelet probes the pod IP.
  it("the health server given no host (--health-listen=:8080) listens on every interface", async () => {
    const lifecycle = new Lifecycle(log, { drainDelayMs: 0, graceMs: 0 });
    const { host, port } = parseListenAddress(":0");
    const server = await serveHealth(lifecycle, createMetricsRegistry({ defaultMetrics: false }), port, host);
    try {
      const bound = server.server.address() as AddressInfo;
      expect(WILDCARDS).toContain(bound.address);
      expect(await status("127.0.0.1", bound.port)).toBe(200);
    } finally {
      await server.close(0);
    }
  });

  it("the health server given a host binds only that host", async () => {
    const lifecycle = new Lifecycle(log, { drainDelayMs: 0, graceMs: 0 });
    const server = await serveHealth(lifecycle, createMetricsRegistry({ defaultMetrics: false }), 0, "127.0.0.1");
    try {
      expect((server.server.address() as AddressInfo).address).toBe("127.0.0.1");
    } finally {
      await server.close(0);
    }
  });
});
