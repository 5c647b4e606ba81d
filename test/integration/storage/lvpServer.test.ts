import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { kubeRequest } from "../../../src/kube/request.js";
import { createLogger } from "../../../src/server/logger.js";
import { listen, type RunningServer } from "../../../src/server/http.js";
import { createMetricsRegistry } from "../../../src/server/metrics.js";
import { lvpHandler } from "../../../src/storage/lvpServer.js";
import { signLvpUrl } from "../../../src/storage/lvpSignature.js";
import { createStorageMetrics } from "../../../src/storage/metrics.js";
import { keyFromFile, keyFromSecret } from "../../../src/storage/signingKeys.js";
import { ObjectStore } from "../../../src/storage/store.js";
import { repoRoot } from "../../cluster/binaries.js";
import { freePort, startChild, type Child } from "../../cluster/processes.js";
import { until } from "../../cluster/wait.js";
import { lvpPluginSign } from "../../storage/lvpPluginSign.js";

const POD = "10.244.3.9:3000";
const SOON = () => new Date(Date.now() + 10 * 60_000);

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A raw request: the path goes out exactly as given (no URL normalisation), with the Host we choose. */
function request(server: RunningServer, target: string, options: { method?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, method: options.method ?? "GET", path: target, headers: { host: options.host ?? `127.0.0.1:${server.port}`, ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** The path and query of a signed URL, to send to our server whatever host the URL names. */
const target = (url: string) => url.slice(url.indexOf("/", url.indexOf("//") + 2));

describe("LVP-compatible file server", () => {
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-lvp-"));
  const root = join(work, "root");
  const keyFile = join(work, "signing-key");
  let key = randomBytes(16);
  const big = randomBytes(3 * 1024 * 1024 + 17);
  let store: ObjectStore;
  let server: RunningServer;
  const sign = (objectKey: string, options: { host?: string; expires?: Date; bucket?: string } = {}) =>
    lvpPluginSign(key, options.host ?? POD, options.bucket ?? "snapshots", objectKey, options.expires ?? SOON());

  beforeAll(async () => {
    mkdirSync(join(root, "snapshots", "backups", "legacy"), { recursive: true });
    mkdirSync(join(work, "outside"));
    writeFileSync(join(work, "outside", "secret"), "outside the root");
    writeFileSync(keyFile, key);
    store = await ObjectStore.open(root, { durability: "none" });
    await store.put("snapshots", "backups/b1/b1.tar.gz", Readable.from([big]), { contentType: "application/gzip" });
    await store.put("snapshots", "backups/b1/empty.json", Readable.from([]));
    // Written by LVP's plugin, not by us: no metadata record.
    writeFileSync(join(root, "snapshots", "backups", "legacy", "legacy-logs.gz"), "legacy bytes");
    // Planted links that lead out of the root.
    symlinkSync(join(work, "outside"), join(root, "snapshots", "evil"));
    symlinkSync(join(work, "outside", "secret"), join(root, "snapshots", "leak"));
    server = await listen({
      port: 0,
      handler: lvpHandler({ store, keys: keyFromFile(keyFile), issuedHosts: [POD], log: createLogger({ level: "silent" }), metrics: createStorageMetrics(createMetricsRegistry({ defaultMetrics: false })) }),
    });
  });
  afterAll(async () => {
    await server?.close(1_000);
    await store?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("serves a whole object with its metadata", async () => {
    const reply = await request(server, target(sign("backups/b1/b1.tar.gz")));
    expect(reply.status).toBe(200);
    expect(reply.body.equals(big)).toBe(true);
    expect(reply.headers).toMatchObject({
      "content-length": String(big.length),
      "content-type": "application/gzip",
      etag: `"${createHash("md5").update(big).digest("hex")}"`,
      "accept-ranges": "bytes",
    });
    expect(Date.parse(reply.headers["last-modified"]!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("answers HEAD with the headers and no body, and serves empty objects", async () => {
    const head = await request(server, target(sign("backups/b1/b1.tar.gz")), { method: "HEAD" });
    expect([head.status, head.headers["content-length"], head.body.length]).toEqual([200, String(big.length), 0]);
    const empty = await request(server, target(sign("backups/b1/empty.json")));
    expect([empty.status, empty.headers["content-length"], empty.body.length]).toEqual([200, "0", 0]);
  });

  it("serves single ranges (206), refuses ranges past the end (416) and ignores multi-ranges", async () => {
    const url = target(sign("backups/b1/b1.tar.gz"));
    const part = await request(server, url, { headers: { range: "bytes=1048570-1048585" } });
    expect(part.status).toBe(206);
    expect(part.headers["content-range"]).toBe(`bytes 1048570-1048585/${big.length}`);
    expect(part.body.equals(big.subarray(1048570, 1048586))).toBe(true);
    const tail = await request(server, url, { headers: { range: "bytes=-5" } });
    expect([tail.status, tail.body.equals(big.subarray(-5))]).toEqual([206, true]);
    const past = await request(server, url, { headers: { range: `bytes=${big.length}-` } });
    expect([past.status, past.headers["content-range"]]).toEqual([416, `bytes */${big.length}`]);
    const multi = await request(server, url, { headers: { range: "bytes=0-1,5-6" } });
    expect([multi.status, multi.body.length]).toEqual([200, big.length]);
  });

  it("streams large ranges through reused buffers, and survives clients that go away mid-download", async () => {
    const url = target(sign("backups/b1/b1.tar.gz"));
    const large = await request(server, url, { headers: { range: "bytes=100000-2999999" } });
    expect([large.status, large.body.equals(big.subarray(100000, 3000000))]).toEqual([206, true]);
    // Read the first bytes, then hang up.
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: server.port, path: url, headers: { host: `127.0.0.1:${server.port}` } }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? resolve() : reject(err)));
    });
    const again = await request(server, url);
    expect([again.status, again.body.equals(big)]).toEqual([200, true]);
  });

  it("serves files LVP's plugin wrote (no metadata record)", async () => {
    const reply = await request(server, target(sign("backups/legacy/legacy-logs.gz")));
    expect([reply.status, reply.body.toString(), reply.headers.etag]).toEqual([200, "legacy bytes", undefined]);
  });

  it("verifies URLs issued for the pod IP when they arrive under another Host (Service, port-forward, ingress)", async () => {
    const viaService = await request(server, target(sign("backups/b1/empty.json")), { host: "velero-lvp.velero.svc:3000" });
    expect(viaService.status).toBe(200);
    const minted = signLvpUrl(key, "https://backups.example.com", "snapshots", "backups/b1/empty.json", SOON());
    expect((await request(server, target(minted), { host: "backups.example.com" })).status).toBe(200);
    const elsewhere = await request(server, target(sign("backups/b1/empty.json", { host: "10.244.3.10:3000" })), { host: "velero-lvp.velero.svc:3000" });
    expect([elsewhere.status, elsewhere.body.toString()]).toEqual([403, "the signature does not match this URL\n"]);
  });

  it.each([
    ["an expired URL", () => target(sign("backups/b1/b1.tar.gz", { expires: new Date(Date.now() - 1000) })), "the URL has expired"],
    ["a URL for another key", () => target(sign("backups/b1/empty.json")).replace("empty.json", "b1.tar.gz"), "the signature does not match this URL"],
    ["a tampered signature", () => target(sign("backups/b1/b1.tar.gz")).replace(/signature=(.)/, (_m, c: string) => `signature=${c === "A" ? "B" : "A"}`), "the signature does not match this URL"],
    ["no signature", () => target(sign("backups/b1/b1.tar.gz")).replace(/&signature=.*/, ""), "the URL has no signature"],
    ["no query at all", () => "/snapshots/backups/b1/b1.tar.gz", "the URL has no expires parameter"],
  ])("refuses %s with 403 and a short reason", async (_name, url, reason) => {
    const reply = await request(server, url());
    expect([reply.status, reply.body.toString()]).toEqual([403, `${reason}\n`]);
  });

  it.each([
    ["a '..' path", "../outside/secret"],
    ["a planted directory symlink", "evil/secret"],
    ["a planted file symlink", "leak"],
    ["the store's internal folder", "../.app-snapshots/tmp"],
    ["a directory", "backups/b1"],
    ["a missing object", "backups/b1/none"],
  ])("answers 404 for %s, even when signed", async (_name, objectKey) => {
    const reply = await request(server, target(sign(objectKey)));
    expect([reply.status, reply.body.toString()]).toEqual([404, "not found\n"]);
  });

  it("answers 404 for percent-encoded traversal and for a missing bucket", async () => {
    const encoded = target(sign("../outside/secret")).replace("/../", "/%2e%2e/");
    expect((await request(server, encoded)).status).toBe(404);
    expect((await request(server, target(sign("x", { bucket: "nobucket" })))).status).toBe(404);
  });

  it("rejects malformed and hostile requests precisely", async () => {
    expect((await request(server, target(sign("backups/b1/b1.tar.gz")), { method: "PUT" })).status).toBe(405);
    const del = await request(server, target(sign("backups/b1/b1.tar.gz")), { method: "DELETE" });
    expect([del.status, del.headers.allow]).toEqual([405, "GET, HEAD"]);
    expect((await request(server, "/snapshots/%zz?expires=x")).status).toBe(400);
    expect((await request(server, `/snapshots/${"a".repeat(9000)}`)).status).toBe(400);
    expect((await request(server, "http://evil.example/snapshots/x")).status).toBe(400);
    expect((await request(server, "*", { method: "OPTIONS" })).status).toBe(400);
    // Nothing was written or removed by any of it.
    expect((await store.head("snapshots", "backups/b1/b1.tar.gz")).size).toBe(big.length);
  });

  it("serves /livez without a signature", async () => {
    const reply = await request(server, "/livez");
    expect([reply.status, reply.body.toString()]).toEqual([200, "ok\n"]);
  });

  it("picks up a rotated key from its file", async () => {
    const oldUrl = target(sign("backups/b1/empty.json"));
    key = randomBytes(16);
    writeFileSync(keyFile, key);
    // Re-read after a failed check (at most once a second), so wait for that window.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await request(server, target(sign("backups/b1/empty.json")))).status).toBe(200);
    expect((await request(server, oldUrl)).status).toBe(403);
  });
});

describe("LVP signing key from the Kubernetes Secret, and the CLI as a drop-in sidecar", () => {
  const cluster = inject("cluster");
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const namespace = "velero-lvp";
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-lvp-cli-"));
  const key = randomBytes(16);
  let child: Child | undefined;

  beforeAll(async () => {
    mkdirSync(join(work, "mount", "hostpath-snapshots", "backups", "b2"), { recursive: true });
    writeFileSync(join(work, "mount", "hostpath-snapshots", "backups", "b2", "b2-logs.gz"), "velero logs");
    await kubeRequest(kc, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  });
  afterAll(async () => {
    await child?.stop();
    await kubeRequest(kc, "DELETE", `/api/v1/namespaces/${namespace}`).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it("has no key before LVP's plugin creates the Secret, and finds it after", async () => {
    const source = keyFromSecret(kc, namespace, { minRefreshMs: 0 });
    expect(await source.keys()).toEqual([]);
    await kubeRequest(kc, "POST", `/api/v1/namespaces/${namespace}/secrets`, { apiVersion: "v1", kind: "Secret", metadata: { name: "lvp-signingsecret" }, data: { SigningKey: key.toString("base64") } });
    expect(await source.refresh()).toEqual([key]);
  });

  it("runs as LVP's sidecar command with only LVP's environment, and serves URLs LVP's plugin signed", async () => {
    const port = await freePort();
    const root = join(work, "mount");
    // LVP's sidecar environment; the kubeconfig stands in for the in-cluster service account.
    const env = { MOUNT_POINT: root, VELERO_NAMESPACE: namespace, POD_IP: "10.244.7.7", KUBECONFIG: cluster.kubeconfigPath };
    // Only the port is overridden: tests listen on loopback, LVP's :3000 would be every interface.
    child = startChild("lvp", process.execPath, [join(repoRoot, "dist/src/lvpFileserver.js"), "--lvp-listen", `127.0.0.1:${port}`, "--drain-delay", "0"], join(work, "lvp.log"), env);
    const server = { port } as RunningServer;
    await until("the file server answers /livez", async () => ((await request(server, "/livez").catch(() => undefined))?.status === 200 ? true : undefined), 20_000);
    const url = lvpPluginSign(key, "10.244.7.7:3000", "hostpath-snapshots", "backups/b2/b2-logs.gz", SOON());
    const reply = await request(server, target(url));
    expect([reply.status, reply.body.toString()], child.tail()).toEqual([200, "velero logs"]);
    // The admin command mints links with the same key, from the same environment.
    const minted = execFileSync(process.execPath, [join(repoRoot, "dist/src/cli.js"), "storage", "sign", "s3://hostpath-snapshots/backups/b2/b2-logs.gz", "--ttl", "2m"], { env: { ...process.env, ...env } })
      .toString()
      .trim();
    expect(minted).toMatch(/^http:\/\/10\.244\.7\.7:3000\/hostpath-snapshots\/backups\/b2\/b2-logs\.gz\?expires=[^&]+&signature=[A-Za-z0-9_-]{27}=$/);
    expect((await request(server, target(minted))).status).toBe(200);
    // Read-only: nothing was created in the mount.
    expect(readdirSync(root)).toEqual(["hostpath-snapshots"]);
  });
});
