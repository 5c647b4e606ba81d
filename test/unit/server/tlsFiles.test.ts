import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { createCa, issueCertificate } from "../../../src/certs/authority.js";
import { listen, type RunningServer } from "../../../src/server/http.js";
import { createLogger } from "../../../src/server/logger.js";
import { readTlsFiles, watchTlsFiles } from "../../../src/server/tlsFiles.js";

const log = createLogger({ level: "silent", pretty: false });
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("certificate files", () => {
  const ca = createCa({ commonName: "reload-ca", validityDays: 1 });
  const leaf = (cn: string) => issueCertificate(ca, { commonName: cn, ipAddresses: ["127.0.0.1"], usage: "server", validityDays: 1 });

  it("refuses a key that does not belong to the certificate", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tls-"));
    cleanups.push(() => rmSync(dir, { recursive: true }));
    writeFileSync(path.join(dir, "tls.crt"), leaf("a").certPem);
    writeFileSync(path.join(dir, "tls.key"), leaf("b").keyPem);
    expect(() => readTlsFiles(path.join(dir, "tls.crt"), path.join(dir, "tls.key"))).toThrow(/key values mismatch/);
  });

  it("hot-reloads a replaced pair (Secret-volume style symlink swap) and keeps serving through a bad one", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tls-"));
    cleanups.push(() => rmSync(dir, { recursive: true }));
    const write = (name: string, certPem: string, keyPem: string) => {
      // Write elsewhere, then rename over: readers never see a half-written file.
      writeFileSync(path.join(dir, "tmp.crt"), certPem);
      writeFileSync(path.join(dir, "tmp.key"), keyPem);
      renameSync(path.join(dir, "tmp.crt"), path.join(dir, `${name}.crt`));
      renameSync(path.join(dir, "tmp.key"), path.join(dir, `${name}.key`));
    };
    const first = leaf("first");
    write("tls", first.certPem, first.keyPem);
    const certFile = path.join(dir, "tls.crt");
    const keyFile = path.join(dir, "tls.key");
    const server: RunningServer = await listen({ port: 0, tls: readTlsFiles(certFile, keyFile), handler: (_q, r) => r.end("ok") });
    cleanups.push(() => server.close(100));
    cleanups.push(watchTlsFiles(certFile, keyFile, (material) => server.setTls(material), log, 50));
    const peer = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ port: server.port, host: "127.0.0.1", ca: ca.certPem }, () => {
          resolve(String(socket.getPeerCertificate().subject.CN));
          socket.end();
        });
        socket.on("error", reject);
      });
    expect(await peer()).toBe("first");

    const broken = leaf("broken");
    write("tls", broken.certPem, first.keyPem); // mismatched pair: must be ignored
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await peer()).toBe("first");

    const second = leaf("second");
    write("tls", second.certPem, second.keyPem);
    await expect.poll(peer, { timeout: 3_000, interval: 50 }).toBe("second");
  });
});
