import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { Counter } from "prom-client";
import { describe, expect, it } from "vitest";
import { Lifecycle } from "../../../src/server/lifecycle.js";
import { healthApp } from "../../../src/server/health.js";
import { listen } from "../../../src/server/http.js";
import { createLogger } from "../../../src/server/logger.js";
import { createMetricsRegistry } from "../../../src/server/metrics.js";

const log = createLogger({ level: "silent", pretty: false });

function request(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: urlPath, agent: false }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("Lifecycle and the health port", () => {
  it("reports ready only when every check passes, and not ready once shutdown began", async () => {
    const lifecycle = new Lifecycle(log, { drainDelayMs: 200, graceMs: 1_000 });
    let synced = false;
    lifecycle.addReadinessCheck("informers synced", () => synced);
    const registry = createMetricsRegistry({ defaultMetrics: false });
    new Counter({ name: "test_requests_total", help: "requests seen by the test", registers: [registry] }).inc(3);
    const health = await listen({ port: 0, handler: healthApp(lifecycle, registry) });
    lifecycle.setHealthServer(health);

    expect(await request(health.port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
    expect(await request(health.port, "/readyz")).toEqual({ status: 503, body: "not ready: informers synced\n" });
    synced = true;
    expect((await request(health.port, "/readyz")).status).toBe(200);
    expect((await request(health.port, "/metrics")).body).toContain("test_requests_total 3");

    const done = lifecycle.shutdown("test");
    // During the drain delay the health port still answers, with "not ready".
    expect(await request(health.port, "/readyz")).toEqual({ status: 503, body: "not ready: shutting down\n" });
    expect(lifecycle.shutdown("again")).toBe(done);
    await done;
    await expect(request(health.port, "/healthz")).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("SIGTERM in a real process", () => {
  const fixture = path.resolve("test/fixtures/shutdown-server.mjs");
  const built = existsSync(path.resolve("dist/src/server/lifecycle.js"));

  it("finishes the request in flight, refuses new connections, and exits 0 within the bound", async () => {
    expect(built, "dist/ is missing: run 'make build' (make test does) before the unit tests").toBe(true);
    const child = spawn(process.execPath, [fixture], { env: { ...process.env, SLOW_MS: "1500", DRAIN_MS: "300" }, stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on("exit", (code) => resolve({ code, at: Date.now() })));
    const [port, healthPort] = await new Promise<number[]>((resolve) =>
      child.stdout.on("data", (chunk: Buffer) => {
        const match = /listening (\d+) (\d+)/.exec(chunk.toString());
        if (match) resolve([Number(match[1]), Number(match[2])]);
      }),
    );

    const slow = request(port!, "/slow");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const signalledAt = Date.now();
    child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await request(healthPort!, "/readyz")).status).toBe(503);
    // After the drain delay the serving port is closed while /slow is still running.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expect(request(port!, "/fast")).rejects.toThrow(/ECONNREFUSED/);

    expect(await slow).toEqual({ status: 200, body: "slow done" });
    const { code, at } = await exited;
    expect(code).toBe(0);
    expect(at - signalledAt).toBeLessThan(5_000);
  });
});
