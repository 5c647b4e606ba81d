import type { KeyPair } from "./authority.js";
import { issuedBy, keyMatches, parseBundle, parseCertificate, type CertificateInfo } from "./pem.js";
import { duration, issueServing, leafRenewalAt, outlives, sansMatch, type ServingNames } from "./rotation.js";

/**
 * The storage's serving certificate, as the keys of its `kubernetes.io/tls` Secret: the pair the
 * storage pod mounts and the CA bundle its clients (Velero's BackupStorageLocation caCert) trust.
 * It is issued by the webhook's self-managed CA, so it follows that CA's rotations.
 */
export interface StorageTlsData {
  "tls.crt": string;
  "tls.key": string;
  "ca.crt": string;
}

export const STORAGE_TLS_KEYS = ["tls.crt", "tls.key", "ca.crt"] as const;

export interface StorageTlsSettings extends ServingNames {
  certLifetimeMs: number;
  /** How long the clients must have had a bundle with a new CA before a certificate from it is served. */
  publishDelayMs: number;
}

export interface StorageTlsView {
  now: number;
  /** The webhook's current signing CA and the bundle of every CA still trusted (its Secret's signer.crt and ca.crt). */
  signerPem: string;
  bundle: string;
  /** Since when the storage Secret's ca.crt (and the managed BackupStorageLocation's caCert) equal `bundle`. */
  bundlePublishedSince?: number | undefined;
}

export type StorageTlsStep = { kind: "issue" | "update-bundle"; reason: string } | { kind: "wait"; reason: string; until: number };

function usableLeaf(current: StorageTlsData): CertificateInfo | string {
  try {
    const leaf = parseCertificate(current["tls.crt"]);
    return keyMatches(leaf, current["tls.key"]) ? leaf : "tls.key does not belong to tls.crt";
  } catch (err) {
    return `tls.crt does not parse (${(err as Error).message})`;
  }
}

/**
 * The next step for the storage Secret, a pure function of its contents, the webhook's CA and the
 * clock. A missing, broken, expired or no longer trusted certificate is replaced at once; a changed
 * bundle is copied first, and a certificate from a new CA is issued only once that bundle has been
 * published for publishDelayMs (clients never meet a certificate they cannot verify); otherwise the
 * certificate is renewed at two-thirds of its lifetime, when the lifetime was lowered, or when the names changed.
 */
export function planStorageTls(current: StorageTlsData | undefined, view: StorageTlsView, settings: StorageTlsSettings): StorageTlsStep {
  const { now } = view;
  if (!current) return { kind: "issue", reason: "no storage certificate yet" };
  const leaf = usableLeaf(current);
  if (typeof leaf === "string") return { kind: "issue", reason: `the storage Secret is unusable: ${leaf}` };
  if (leaf.notAfter <= now) return { kind: "issue", reason: "the storage certificate has expired" };
  const trusted = parseBundle(view.bundle);
  if (!trusted.some((ca) => issuedBy(leaf, ca))) return { kind: "issue", reason: "the CA that issued the storage certificate is no longer in the bundle" };
  if (current["ca.crt"] !== view.bundle) return { kind: "update-bundle", reason: "the CA bundle changed" };

  if (!issuedBy(leaf, parseCertificate(view.signerPem))) {
    const since = view.bundlePublishedSince;
    if (since !== undefined && now >= since + settings.publishDelayMs) return { kind: "issue", reason: "the bundle with the new CA is published" };
    return { kind: "wait", reason: "the bundle with the new CA is not yet published to the storage's clients", until: since !== undefined ? since + settings.publishDelayMs : now + 1_000 };
  }
  if (outlives(leaf, settings.certLifetimeMs)) return { kind: "issue", reason: `the storage certificate is valid for longer than the configured ${duration(settings.certLifetimeMs)}` };
  if (now >= leafRenewalAt(leaf)) return { kind: "issue", reason: "two-thirds of the storage certificate's lifetime have passed" };
  if (!sansMatch(leaf, settings)) return { kind: "issue", reason: "the storage certificate's names differ from the configured ones" };
  return { kind: "wait", reason: "the storage certificate is current", until: leafRenewalAt(leaf) };
}

/** Carries out a step that changes the Secret (key generation makes this the impure half). */
export function applyStorageTls(step: StorageTlsStep, current: StorageTlsData | undefined, signer: KeyPair, bundle: string, now: number, settings: StorageTlsSettings): StorageTlsData {
  switch (step.kind) {
    case "issue": {
      const leaf = issueServing(signer, settings, settings.certLifetimeMs, new Date(now));
      return { "tls.crt": leaf.certPem, "tls.key": leaf.keyPem, "ca.crt": bundle };
    }
    case "update-bundle":
    case "wait":
      if (!current) throw new Error(`${step.kind} needs an existing storage certificate`);
      return { ...current, "ca.crt": bundle };
  }
}
