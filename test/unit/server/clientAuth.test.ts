import https from "node:https";
import type { TLSSocket } from "node:tls";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createCa, issueCertificate, type KeyPair } from "../../../src/certs/authority.js";
import { judgeClient, requireClientCertificate } from "../../../src/server/clientAuth.js";
import { listen, type RunningServer } from "../../../src/server/http.js";
import { createLogger } from "../../../src/server/logger.js";
import { readCaFile, watchFiles } from "../../../src/server/tlsFiles.js";
import { clientAuthMode } from "../../../src/commands/webhook.js";

const log = createLogger({ level: "silent", pretty: false });
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const servingCa = createCa({ commonName: "serving-ca", validityDays: 1 });
const serving = issueCertificate(servingCa, { commonName: "webhook", ipAddresses: ["127.0.0.1"], usage: "server", validityDays: 1 });
const clientCa = createCa({ commonName: "apiserver-client-ca", validityDays: 1 });
const otherCa = createCa({ commonName: "some-other-ca", validityDays: 1 });
const client = (ca: KeyPair, commonName: string, dnsNames: string[] = []) => issueCertificate(ca, { commonName, dnsNames, usage: "client", validityDays: 1 });

interface Answer {
  status: number;
  body: string;
  resumed: boolean;
}

/** One request on a new connection; `agent` lets a second one resume the first one's TLS session. */
function call(server: RunningServer, cert: KeyPair | undefined, agent?: https.Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port: server.port, path: "/validate/velero", method: "POST", ca: servingCa.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}), agent: agent ?? false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode!, body, resumed: (res.socket as TLSSocket).isSessionReused() }));
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
}

async function serve(allowed: string[], ca: string | Buffer = clientCa.certPem): Promise<{ server: RunningServer; reached: () => number }> {
  let reached = 0;
  const handler = requireClientCertificate(
    (_req, res) => {
      reached++;
      res.end("admitted");
    },
    allowed,
    log,
  );
  const server = await listen({ port: 0, handler, tls: { cert: serving.certPem, key: serving.keyPem, ca }, clientCertificates: true });
  cleanups.push(() => server.close(100));
  return { server, reached: () => reached };
}

describe("judgeClient", () => {
  it("401 without a verified certificate, 403 for a name not listed, the matching name otherwise", () => {
    expect(judgeClient({ authorized: false, presented: false, authorizationError: "UNABLE_TO_GET_ISSUER_CERT", names: [] }, ["a"])).toEqual({ ok: false, status: 401, message: "a client certificate signed by the webhook's client CA is required (no client certificate)" });
    expect(judgeClient({ authorized: false, presented: true, authorizationError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", names: ["a"] }, ["a"])).toMatchObject({ status: 401, message: "a client certificate signed by the webhook's client CA is required (UNABLE_TO_VERIFY_LEAF_SIGNATURE)" });
    expect(judgeClient({ authorized: true, presented: true, names: ["kubelet", "node-1"] }, ["a"])).toEqual({ ok: false, status: 403, message: 'client certificate for "kubelet" is not allowed to call this webhook' });
    expect(judgeClient({ authorized: true, presented: true, names: ["apiserver", "x.ns.svc"] }, ["x.ns.svc"])).toEqual({ ok: true, name: "x.ns.svc" });
  });
});

describe("clientAuthMode (the flags)", () => {
  it("is off without --client-ca, and refuses a CA without names or names without a CA", () => {
    expect(clientAuthMode({ clientName: [] })).toBeUndefined();
    expect(clientAuthMode({ clientCa: "/ca.crt", clientName: ["kube-apiserver"] })).toEqual({ caFile: "/ca.crt", names: ["kube-apiserver"] });
    expect(() => clientAuthMode({ clientCa: "/ca.crt", clientName: [] })).toThrow("--client-ca needs at least one --client-name");
    expect(() => clientAuthMode({ clientName: ["kube-apiserver"] })).toThrow("--client-name needs --client-ca");
    expect(() => clientAuthMode({ clientCa: "/ca.crt", clientName: [" "] })).toThrow("--client-name must not be empty");
  });
});

describe("a webhook that requires the apiserver's client certificate (real TLS)", () => {
  it("serves a caller whose certificate chains to the client CA and carries an allowed CN, also on a resumed TLS session", async () => {
    const { server, reached } = await serve(["kube-apiserver"]);
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    cleanups.push(() => agent.destroy());
    const apiserver = client(clientCa, "kube-apiserver");
    const first = await call(server, apiserver, agent);
    const second = await call(server, apiserver, agent);
    expect([first.status, first.body, second.status, second.body]).toEqual([200, "admitted", 200, "admitted"]);
    expect(second.resumed).toBe(true);
    expect(reached()).toBe(2);
  });

  it("accepts a DNS SAN as the name (a certificate made for <service>.<namespace>.svc)", async () => {
    const { server } = await serve(["app-snapshots-webhook.app-snapshots.svc"]);
    expect((await call(server, client(clientCa, "apiserver", ["app-snapshots-webhook.app-snapshots.svc"]))).status).toBe(200);
  });

  it("refuses, before the handler, a caller without a certificate (401), one from another CA (401) and one with another name (403)", async () => {
    const { server, reached } = await serve(["kube-apiserver"]);
    const none = await call(server, undefined);
    const foreign = await call(server, client(otherCa, "kube-apiserver"));
    const kubelet = await call(server, client(clientCa, "system:node:node-1"));
    expect([none.status, foreign.status, kubelet.status]).toEqual([401, 401, 403]);
    expect(JSON.parse(none.body)).toEqual({ message: "a client certificate signed by the webhook's client CA is required (no client certificate)" });
    expect((JSON.parse(foreign.body) as { message: string }).message).toMatch(/^a client certificate signed by the webhook's client CA is required \(.+\)$/);
    expect(JSON.parse(kubelet.body)).toEqual({ message: 'client certificate for "system:node:node-1" is not allowed to call this webhook' });
    expect(reached()).toBe(0);
  });

  it("hot-reloads the client CA file: a certificate from the new CA is accepted, one from the old refused", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "client-ca-"));
    cleanups.push(() => rmSync(dir, { recursive: true }));
    const caFile = path.join(dir, "ca.crt");
    writeFileSync(caFile, clientCa.certPem);
    const { server } = await serve(["kube-apiserver"], readCaFile(caFile));
    let loaded = 0;
    cleanups.push(
      watchFiles(
        [caFile],
        () => readCaFile(caFile),
        (ca) => {
          loaded++;
          server.setTls({ cert: serving.certPem, key: serving.keyPem, ca });
        },
        log,
        "client CA",
        50,
      ),
    );
    expect((await call(server, client(clientCa, "kube-apiserver"))).status).toBe(200);
    writeFileSync(path.join(dir, "tmp"), "not a certificate");
    renameSync(path.join(dir, "tmp"), caFile);
    writeFileSync(path.join(dir, "tmp"), otherCa.certPem);
    renameSync(path.join(dir, "tmp"), caFile);
    await expect.poll(() => loaded, { timeout: 5_000 }).toBe(2);
    expect((await call(server, client(otherCa, "kube-apiserver"))).status).toBe(200);
    expect((await call(server, client(clientCa, "kube-apiserver"))).status).toBe(401);
  });

  it("refuses a CA file that holds no certificate", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "client-ca-"));
    cleanups.push(() => rmSync(dir, { recursive: true }));
    writeFileSync(path.join(dir, "ca.crt"), "hello");
    expect(() => readCaFile(path.join(dir, "ca.crt"))).toThrow("holds no PEM certificate");
  });
});
