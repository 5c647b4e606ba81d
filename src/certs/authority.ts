import { randomBytes, generateKeyPairSync } from "node:crypto";
import forge from "node-forge";

/** A certificate and its key, both PEM. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface CaOptions {
  commonName: string;
  validityDays?: number;
  /** Lifetime in seconds; overrides validityDays (rotation tests use seconds). */
  validitySeconds?: number;
  now?: Date;
}

export interface LeafOptions {
  commonName: string;
  /** Subject organisations; for client certificates these are the Kubernetes groups. */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: "server" | "client" | "server-and-client";
  validityDays?: number;
  /** Lifetime in seconds; overrides validityDays (rotation tests use seconds). */
  validitySeconds?: number;
  /** Never valid beyond this instant (a leaf must not outlive the CA that signed it). */
  notAfter?: Date;
  now?: Date;
}

/** Certificates start this long before they are issued, so a peer whose clock is slightly behind accepts them. */
export const CLOCK_SKEW_MS = 60_000;

/** RSA-2048 through Node's native generator: node-forge's pure-JS one takes seconds per key. */
export function generateRsaKey(): forge.pki.rsa.KeyPair {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const privateForge = forge.pki.privateKeyFromPem(pem);
  const publicForge = forge.pki.setRsaPublicKey(privateForge.n, privateForge.e);
  return { privateKey: privateForge, publicKey: publicForge };
}

/** 128 random bits, first bit cleared so the DER integer stays positive. */
/**
 * 16 random bytes as a positive DER INTEGER of exactly that length: the top bit clear (else negative), and the
 * first byte not zero, since DER drops a leading zero byte and the serial would be 15 bytes (1 run in 128).
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString("hex");
}

function validity(cert: forge.pki.Certificate, now: Date, seconds: number, cap?: Date): void {
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = now.getTime() + seconds * 1000;
  cert.validity.notAfter = new Date(cap ? Math.min(notAfter, cap.getTime()) : notAfter);
}

export function createCa(options: CaOptions): KeyPair {
  const keys = generateRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, options.now ?? new Date(), options.validitySeconds ?? (options.validityDays ?? 3650) * 86_400);
  const subject = [{ name: "commonName", value: options.commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

export function issueCertificate(ca: KeyPair, options: LeafOptions): KeyPair {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = generateRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, options.now ?? new Date(), options.validitySeconds ?? (options.validityDays ?? 365) * 86_400, options.notAfter);
  cert.setSubject([
    { name: "commonName", value: options.commonName },
    ...(options.organizations ?? []).map((value) => ({ name: "organizationName", value })),
  ]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: "extKeyUsage",
      serverAuth: options.usage !== "client",
      clientAuth: options.usage !== "server",
    },
    ...(altNames.length > 0 ? [{ name: "subjectAltName", altNames }] : []),
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A bare RSA key pair in PEM (service-account token signing needs no certificate). */
export function createSigningKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}
