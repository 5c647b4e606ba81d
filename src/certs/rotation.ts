import { CLOCK_SKEW_MS, createCa, issueCertificate, type KeyPair } from "./authority.js";
import { bundlePem, issuedBy, keyMatches, parseBundle, parseCertificate, type CertificateInfo } from "./pem.js";

/**
 * The self-managed webhook certificates, as the keys of one `kubernetes.io/tls` Secret:
 * the serving pair, the CA bundle clients must trust (the current CA, plus the previous one while
 * it overlaps), and the CA that signs new serving certificates.
 */
export interface TlsSecretData {
  "tls.crt": string;
  "tls.key": string;
  "ca.crt": string;
  "signer.crt": string;
  "signer.key": string;
}

export const TLS_SECRET_KEYS = ["tls.crt", "tls.key", "ca.crt", "signer.crt", "signer.key"] as const;

export interface RotationSettings {
  caLifetimeMs: number;
  certLifetimeMs: number;
  dnsNames: string[];
  ipAddresses: string[];
  /**
   * How long every webhook configuration must have carried the bundle with a new CA before a
   * serving certificate from that CA is used, so each apiserver has seen the bundle first.
   */
  publishDelayMs: number;
}

export interface RotationView {
  now: number;
  /** Since when every managed webhook configuration holds exactly this Secret's `ca.crt` (undefined: not now). */
  bundlePublishedSince?: number | undefined;
}

export type RotationStep =
  | { kind: "create" | "rotate-ca" | "issue-leaf" | "prune-bundle"; reason: string }
  | { kind: "wait"; reason: string; until: number };

interface Parsed {
  leaf: CertificateInfo;
  signer: CertificateInfo;
  bundle: CertificateInfo[];
}

/** Why the Secret cannot be used as it is (then everything is made anew), or its parsed parts. */
function parse(data: TlsSecretData, now: number): Parsed | { problem: string } {
  let leaf: CertificateInfo, signer: CertificateInfo, bundle: CertificateInfo[];
  try {
    leaf = parseCertificate(data["tls.crt"]);
    signer = parseCertificate(data["signer.crt"]);
    bundle = parseBundle(data["ca.crt"]);
  } catch (err) {
    return { problem: `a certificate does not parse (${(err as Error).message})` };
  }
  if (!signer.isCa) return { problem: "signer.crt is not a CA" };
  if (!keyMatches(signer, data["signer.key"])) return { problem: "signer.key does not belong to signer.crt" };
  if (!keyMatches(leaf, data["tls.key"])) return { problem: "tls.key does not belong to tls.crt" };
  if (!bundle.some((ca) => ca.fingerprint === signer.fingerprint)) return { problem: "ca.crt does not contain the signing CA" };
  if (signer.notAfter <= now) return { problem: "the signing CA has expired" };
  return { leaf, signer, bundle };
}

/** When a certificate of ours was issued: its start is backdated by CLOCK_SKEW_MS. */
const issuedAt = (cert: CertificateInfo) => Math.min(cert.notBefore + CLOCK_SKEW_MS, cert.notAfter);

/** Serving certificates are renewed two-thirds into their lifetime (cert-manager's rule). */
export function leafRenewalAt(leaf: CertificateInfo): number {
  const start = issuedAt(leaf);
  return start + ((leaf.notAfter - start) * 2) / 3;
}

/** A CA is replaced when a third of its lifetime is left; the old one stays trusted until it expires. */
export function caRotationAt(ca: CertificateInfo): number {
  const start = issuedAt(ca);
  return ca.notAfter - (ca.notAfter - start) / 3;
}

// X.509 keeps whole seconds, so a certificate made with exactly the configured lifetime may read up to a second longer.
const LIFETIME_SLACK_MS = 2_000;

/** Whether `cert` was issued for longer than `lifetimeMs` (the setting was lowered after it was made). */
export function outlives(cert: CertificateInfo, lifetimeMs: number): boolean {
  return cert.notAfter - issuedAt(cert) > lifetimeMs + LIFETIME_SLACK_MS;
}

/** A lifetime as the flags write it. */
export const duration = (ms: number) => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${ms / 1000}s`);

/** The names a serving certificate must carry. */
export interface ServingNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/** Whether the certificate carries exactly these SANs. */
export function sansMatch(leaf: CertificateInfo, settings: ServingNames): boolean {
  const wanted = settings.dnsNames.length + settings.ipAddresses.length;
  const present = (leaf.x509.subjectAltName ?? "").split(", ").filter(Boolean).length;
  return (
    present === wanted &&
    settings.dnsNames.every((name) => leaf.x509.checkHost(name, { wildcards: false }) === name) &&
    settings.ipAddresses.every((ip) => leaf.x509.checkIP(ip) !== undefined)
  );
}

/**
 * The next step for the Secret's certificates, a pure function of its contents, the clock and
 * whether the bundle has reached the webhook configurations. Order matters: a broken Secret is
 * replaced; a CA near its end gets a successor (the bundle then holds both, and the serving
 * certificate is re-issued by the old CA to span the publication); a serving
 * certificate from the new CA is issued only once the bundle with it has been published for
 * `publishDelayMs`; serving certificates are renewed at two-thirds of their lifetime or when the
 * names changed; expired CAs leave the bundle.
 */
export function planRotation(current: TlsSecretData | undefined, view: RotationView, settings: RotationSettings): RotationStep {
  const { now } = view;
  if (!current) return { kind: "create", reason: "no certificates yet" };
  const parsed = parse(current, now);
  if ("problem" in parsed) return { kind: "create", reason: `the Secret is unusable: ${parsed.problem}` };
  const { leaf, signer, bundle } = parsed;

  if (now >= caRotationAt(signer)) return { kind: "rotate-ca", reason: `the CA expires at ${iso(signer.notAfter)}` };
  // A lifetime lowered since (helm upgrade --set certs.caLifetime=...) takes effect now, by the same safe path as
  // a CA near its end, rather than a year later: the admin's way to force a rotation.
  if (outlives(signer, settings.caLifetimeMs)) return { kind: "rotate-ca", reason: `the CA is valid for longer than the configured ${duration(settings.caLifetimeMs)}` };

  if (!issuedBy(leaf, signer)) {
    const since = view.bundlePublishedSince;
    if (since !== undefined && now >= since + settings.publishDelayMs) return { kind: "issue-leaf", reason: "the bundle with the new CA is published" };
    return {
      kind: "wait",
      reason: "the bundle with the new CA is not yet in every webhook configuration",
      until: since !== undefined ? since + settings.publishDelayMs : now + 1_000,
    };
  }
  if (outlives(leaf, settings.certLifetimeMs)) return { kind: "issue-leaf", reason: `the serving certificate is valid for longer than the configured ${duration(settings.certLifetimeMs)}` };
  if (now >= leafRenewalAt(leaf)) return { kind: "issue-leaf", reason: `two-thirds of the serving certificate's lifetime have passed (it expires at ${iso(leaf.notAfter)})` };
  if (!sansMatch(leaf, settings)) return { kind: "issue-leaf", reason: "the serving certificate's names differ from the configured ones" };

  const expired = bundle.filter((ca) => ca.notAfter <= now);
  if (expired.length > 0) return { kind: "prune-bundle", reason: `${expired.length} expired CA(s) in the bundle` };

  const nextExpiry = Math.min(...bundle.filter((ca) => ca.fingerprint !== signer.fingerprint).map((ca) => ca.notAfter));
  return { kind: "wait", reason: "certificates are current", until: Math.min(leafRenewalAt(leaf), caRotationAt(signer), nextExpiry) };
}

/** A serving certificate for these names from `signer`, never outliving it. */
export function issueServing(signer: KeyPair, names: ServingNames, lifetimeMs: number, now: Date): KeyPair {
  return issueCertificate(signer, {
    commonName: names.dnsNames[0] ?? names.ipAddresses[0] ?? "app-snapshots",
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
    usage: "server",
    validitySeconds: lifetimeMs / 1000,
    notAfter: new Date(parseCertificate(signer.certPem).notAfter),
    now,
  });
}

/** Carries out a step that changes the Secret (key generation makes this the impure half). */
export function applyRotation(step: RotationStep, current: TlsSecretData | undefined, now: number, settings: RotationSettings): TlsSecretData {
  const at = new Date(now);
  const newCa = () => createCa({ commonName: `app-snapshots-webhook-ca-${at.toISOString()}`, validitySeconds: settings.caLifetimeMs / 1000, now: at });
  const newLeaf = (signer: KeyPair) => issueServing(signer, settings, settings.certLifetimeMs, at);
  switch (step.kind) {
    case "wait":
      if (!current) throw new Error("nothing to keep");
      return current;
    case "create": {
      const ca = newCa();
      const leaf = newLeaf(ca);
      return { "tls.crt": leaf.certPem, "tls.key": leaf.keyPem, "ca.crt": ca.certPem, "signer.crt": ca.certPem, "signer.key": ca.keyPem };
    }
  }
  if (!current) throw new Error(`${step.kind} needs existing certificates`);
  const signer = { certPem: current["signer.crt"], keyPem: current["signer.key"] };
  const unexpired = parseBundle(current["ca.crt"]).filter((ca) => ca.notAfter > now);
  switch (step.kind) {
    case "rotate-ca": {
      const ca = newCa();
      // Newest first. The serving certificate is re-issued by the old CA (still trusted everywhere):
      // a fresh one gives the new bundle the longest possible time to be published before a
      // certificate from the new CA may be served, as the old CA's key is not kept.
      const leaf = newLeaf(signer);
      return {
        "tls.crt": leaf.certPem,
        "tls.key": leaf.keyPem,
        "ca.crt": bundlePem([parseCertificate(ca.certPem), ...unexpired]),
        "signer.crt": ca.certPem,
        "signer.key": ca.keyPem,
      };
    }
    case "issue-leaf": {
      const leaf = newLeaf(signer);
      return { ...current, "tls.crt": leaf.certPem, "tls.key": leaf.keyPem };
    }
    case "prune-bundle":
      return { ...current, "ca.crt": bundlePem(unexpired) };
  }
}

/** Secret `data` (base64) to the text of these keys; undefined when one is missing. */
export function decodeKeys<K extends string>(data: Record<string, string> | undefined, keys: readonly K[]): Record<K, string> | undefined {
  if (!data) return undefined;
  const out: Partial<Record<K, string>> = {};
  for (const key of keys) {
    const value = data[key];
    if (value === undefined) return undefined;
    out[key] = Buffer.from(value, "base64").toString("utf8");
  }
  return out as Record<K, string>;
}

export function encodeKeys<K extends string>(values: Record<K, string>, keys: readonly K[]): Record<string, string> {
  return Object.fromEntries(keys.map((key) => [key, Buffer.from(values[key]).toString("base64")]));
}

/** Secret `data` (base64) to certificates; undefined when a key is missing. */
export const fromSecretData = (data: Record<string, string> | undefined): TlsSecretData | undefined => decodeKeys(data, TLS_SECRET_KEYS);

export const toSecretData = (certs: TlsSecretData): Record<string, string> => encodeKeys(certs, TLS_SECRET_KEYS);

const iso = (ms: number) => new Date(ms).toISOString();
