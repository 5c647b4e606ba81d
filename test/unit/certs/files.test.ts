import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createCa } from "../../../src/certs/authority.js";
import { generateCertificateFiles } from "../../../src/certs/files.js";
import { buildProgram } from "../../../src/cli.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "certs-files-"));
  dirs.push(dir);
  return path.join(dir, "out");
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

const mode = (file: string) => statSync(file).mode & 0o777;

describe("certs generate", () => {
  it("writes a CA and a serving certificate with every SAN, serverAuth, RSA-2048, a random 16-byte serial and owner-only keys", () => {
    const dir = tempDir();
    const files = generateCertificateFiles({ dir, dnsNames: ["webhook.ns.svc", "localhost"], ipAddresses: ["127.0.0.1", "::1"], validityDays: 30 });
    expect(files.reusedCa).toBe(false);
    const ca = new X509Certificate(readFileSync(files.caCert));
    const leaf = new X509Certificate(readFileSync(files.cert));
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe("DNS:webhook.ns.svc, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(leaf.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(leaf.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(ca.serialNumber).not.toBe(leaf.serialNumber);
    const days = (Date.parse(leaf.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
    expect(leaf.checkPrivateKey(createPrivateKey(readFileSync(files.key)))).toBe(true);
    expect([mode(files.caKey), mode(files.key), mode(files.caCert), mode(files.cert), mode(dir)]).toEqual([0o600, 0o600, 0o644, 0o644, 0o700]);
  });

  it("keeps a valid CA on a second run (caBundles stay valid) and replaces one with less than a month left", () => {
    const dir = tempDir();
    const first = generateCertificateFiles({ dir, dnsNames: ["localhost"], ipAddresses: [] });
    const caPem = readFileSync(first.caCert, "utf8");
    const leafPem = readFileSync(first.cert, "utf8");
    // A key file left world-readable is tightened again.
    writeFileSync(first.key, readFileSync(first.key), { mode: 0o644 });
    const second = generateCertificateFiles({ dir, dnsNames: ["localhost"], ipAddresses: [] });
    expect(second.reusedCa).toBe(true);
    expect(readFileSync(second.caCert, "utf8")).toBe(caPem);
    expect(readFileSync(second.cert, "utf8")).not.toBe(leafPem);
    expect(mode(second.key)).toBe(0o600);

    const expiring = createCa({ commonName: "old", validityDays: 20 });
    writeFileSync(first.caCert, expiring.certPem);
    writeFileSync(first.caKey, expiring.keyPem);
    const third = generateCertificateFiles({ dir, dnsNames: ["localhost"], ipAddresses: [] });
    expect(third.reusedCa).toBe(false);
    expect(new X509Certificate(readFileSync(third.caCert)).subject).toBe("CN=app-snapshots-ca");
  });

  it("is what the CLI runs, defaulting to localhost and 127.0.0.1", async () => {
    const dir = tempDir();
    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    await buildProgram().parseAsync(["node", "app-snapshots", "certs", "generate", "--out", dir, "--days", "2"]);
    expect(out.join("")).toContain("for localhost, 127.0.0.1");
    const leaf = new X509Certificate(readFileSync(path.join(dir, "tls.crt")));
    expect(leaf.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1");
    expect((Date.parse(leaf.validTo) - Date.now()) / 86_400_000).toBeCloseTo(2, 1);
  });
});
