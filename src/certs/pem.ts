import { X509Certificate, createPrivateKey } from "node:crypto";

/** What rotation decisions need from one certificate. */
export interface CertificateInfo {
  pem: string;
  x509: X509Certificate;
  notBefore: number;
  notAfter: number;
  isCa: boolean;
  fingerprint: string;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function parseCertificate(pem: string): CertificateInfo {
  const x509 = new X509Certificate(pem);
  return {
    pem: x509.toString(),
    x509,
    notBefore: Date.parse(x509.validFrom),
    notAfter: Date.parse(x509.validTo),
    isCa: x509.ca,
    fingerprint: x509.fingerprint256,
  };
}

/** Every certificate of a PEM bundle, in order; throws on a block that does not parse. */
export function parseBundle(pem: string): CertificateInfo[] {
  return [...pem.matchAll(PEM_BLOCK)].map((m) => parseCertificate(m[0]));
}

export function bundlePem(certificates: CertificateInfo[]): string {
  return certificates.map((c) => c.pem.trimEnd() + "\n").join("");
}

/** True when the key is the private half of the certificate's public key. */
export function keyMatches(certificate: CertificateInfo, keyPem: string): boolean {
  try {
    return certificate.x509.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** The certificate's SANs as `DNS:name` / `IP:address` strings, sorted (order does not matter for TLS). */
export function subjectAltNames(certificate: CertificateInfo): string[] {
  const raw = certificate.x509.subjectAltName ?? "";
  return raw
    .split(", ")
    .filter(Boolean)
    .map((entry) => entry.replace(/^IP Address:/, "IP:"))
    .sort();
}

export function issuedBy(certificate: CertificateInfo, issuer: CertificateInfo): boolean {
  return certificate.x509.checkIssued(issuer.x509) && certificate.x509.verify(issuer.x509.publicKey);
}
