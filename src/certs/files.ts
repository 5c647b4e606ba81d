import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createCa, issueCertificate, type KeyPair } from "./authority.js";

export interface GenerateOptions {
  dir: string;
  dnsNames: string[];
  ipAddresses: string[];
  validityDays?: number;
}

export interface GeneratedFiles {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
  /** True when an existing, still valid CA in the folder was kept (so caBundles stay valid). */
  reusedCa: boolean;
}

function writeFile(file: string, content: string, mode: number): void {
  writeFileSync(file, content, { mode });
  chmodSync(file, mode); // writeFileSync keeps the mode of an existing file
}

function loadCa(caCert: string, caKey: string): KeyPair | undefined {
  if (!existsSync(caCert) || !existsSync(caKey)) return undefined;
  const certPem = readFileSync(caCert, "utf8");
  const cert = new X509Certificate(certPem);
  // Keep a CA only while it has at least a month left.
  if (!cert.ca || new Date(cert.validTo).getTime() < Date.now() + 30 * 86_400_000) return undefined;
  return { certPem, keyPem: readFileSync(caKey, "utf8") };
}

/** A CA (kept if one is already there) and a fresh serving certificate, with keys readable by the owner only. */
export function generateCertificateFiles(options: GenerateOptions): GeneratedFiles {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const files = {
    caCert: path.join(options.dir, "ca.crt"),
    caKey: path.join(options.dir, "ca.key"),
    cert: path.join(options.dir, "tls.crt"),
    key: path.join(options.dir, "tls.key"),
  };
  const existing = loadCa(files.caCert, files.caKey);
  const ca = existing ?? createCa({ commonName: "app-snapshots-ca", validityDays: 3650 });
  const serving = issueCertificate(ca, {
    commonName: options.dnsNames[0] ?? options.ipAddresses[0] ?? "app-snapshots",
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
    usage: "server",
    validityDays: options.validityDays ?? 365,
  });
  if (!existing) {
    writeFile(files.caCert, ca.certPem, 0o644);
    writeFile(files.caKey, ca.keyPem, 0o600);
  }
  writeFile(files.key, serving.keyPem, 0o600);
  writeFile(files.cert, serving.certPem, 0o644);
  return { ...files, reusedCa: existing !== undefined };
}
