import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, listen, type RunningServer } from "../../../src/server/http.js";
import { createCa, issueCertificate } from "../../../src/certs/authority.js";

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

function get(url: string, agent?: http.Agent, extra: https.RequestOptions = {}): Promise<{ status: number; body: string; connection: string | undefined }> {
  const mod = url.startsWith("https") ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { agent, ...extra }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on("error", reject);
  });
}

function connectRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe("listen", () => {
  it("keeps idle connections longer than the apiserver's 90 s client idle timeout", async () => {
    const server = await listen({ port: 0, handler: (_req, res) => res.end("ok") });
    servers.push(server);
    expect(server.server.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
    expect(KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(90_000);
    expect(server.server.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
    expect(HEADERS_TIMEOUT_MS).toBeGreaterThan(KEEP_ALIVE_TIMEOUT_MS);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("lets an in-flight request finish on close, then refuses new connections", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const server = await listen({
      port: 0,
      handler: (_req, res) => {
        void released.then(() => res.end("finished"));
      },
    });
    const agent = new http.Agent({ keepAlive: true });
    const inFlight = get(`${server.url}/`, agent);
    await expect.poll(() => server.inFlight()).toBe(1);

    const closed = server.close(5_000);
    // The listener is gone at once, while the request is still running.
    expect(await connectRefused(server.port)).toBe("ECONNREFUSED");
    release();
    const answer = await inFlight;
    expect(answer).toMatchObject({ status: 200, body: "finished", connection: "close" });
    await closed;
    agent.destroy();
  });

  it("closes idle keep-alive connections at once instead of waiting for their timeout", async () => {
    const server = await listen({ port: 0, handler: (_req, res) => res.end("ok") });
    const agent = new http.Agent({ keepAlive: true });
    await get(`${server.url}/`, agent);
    const sockets = Object.values(agent.freeSockets).flat();
    expect(sockets).toHaveLength(1);
    const socketClosed = new Promise((resolve) => sockets[0]!.once("close", resolve));
    const started = Date.now();
    await server.close(10_000);
    await socketClosed;
    expect(Date.now() - started).toBeLessThan(2_000);
    agent.destroy();
  });

  it("once draining, still serves but ends each keep-alive connection with its next response, so the client reconnects elsewhere", async () => {
    const server = await listen({ port: 0, handler: (_req, res) => res.end("ok") });
    servers.push(server);
    const agent = new http.Agent({ keepAlive: true });
    expect((await get(`${server.url}/`, agent)).connection).toBe("keep-alive");
    const [pooled] = Object.values(agent.freeSockets).flat();
    const pooledClosed = new Promise((resolve) => pooled!.once("close", resolve));
    server.drain();
    // The pooled connection carries one more request, answered, and is then closed by the server.
    expect(await get(`${server.url}/`, agent)).toEqual({ status: 200, body: "ok", connection: "close" });
    await pooledClosed;
    expect(Object.values(agent.freeSockets).flat()).toHaveLength(0);
    // New connections are still served until close().
    expect((await get(`${server.url}/`)).status).toBe(200);
    agent.destroy();
  });

  it("cuts connections still busy when the grace period ends", async () => {
    const server = await listen({ port: 0, handler: () => undefined /* never answers */ });
    const request = get(`${server.url}/`).catch((err: NodeJS.ErrnoException) => err.code);
    await expect.poll(() => server.inFlight()).toBe(1);
    const started = Date.now();
    await server.close(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await request).toBe("ECONNRESET");
  });

  it("serves TLS and swaps the certificate for new connections without a restart", async () => {
    const ca = createCa({ commonName: "test-ca", validityDays: 1 });
    const first = issueCertificate(ca, { commonName: "first", ipAddresses: ["127.0.0.1"], usage: "server", validityDays: 1 });
    const second = issueCertificate(ca, { commonName: "second", ipAddresses: ["127.0.0.1"], usage: "server", validityDays: 1 });
    const server = await listen({ port: 0, tls: { cert: first.certPem, key: first.keyPem }, handler: (_req, res) => res.end("tls") });
    servers.push(server);
    const peerCommonName = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ port: server.port, host: "127.0.0.1", ca: ca.certPem }, () => {
          const cn = socket.getPeerCertificate().subject.CN;
          socket.end();
          resolve(Array.isArray(cn) ? cn.join(",") : (cn ?? ""));
        });
        socket.on("error", reject);
      });
    expect(await peerCommonName()).toBe("first");
    expect((await get(`${server.url}/`, undefined, { ca: ca.certPem })).body).toBe("tls");
    server.setTls({ cert: second.certPem, key: second.keyPem });
    expect(await peerCommonName()).toBe("second");
  });
});
