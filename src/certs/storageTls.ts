import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { KubeRequestError, kubeGetOptional, kubeRequest } from "../kube/request.js";
import type { Logger } from "../server/logger.js";
import { decodeKeys, encodeKeys, type TlsSecretData } from "./rotation.js";
import { applyStorageTls, planStorageTls, STORAGE_TLS_KEYS, type StorageTlsSettings } from "./storageRotation.js";
import { secretsOf, writeTlsSecret, type Secret } from "./tlsSecret.js";

export interface StorageTlsOptions {
  kc: KubeConfig;
  log: Logger;
  /** The storage Secret lives beside the webhook's (the chart's release namespace). */
  namespace: string;
  secretName: string;
  settings: StorageTlsSettings;
  /** A BackupStorageLocation whose spec.objectStorage.caCert is kept equal to the bundle. */
  location?: { namespace: string; name: string } | undefined;
}

interface BackupStorageLocation extends KubernetesObject {
  spec?: { objectStorage?: { caCert?: string } };
}


/**
 * Issues and renews the storage's serving certificate from the webhook's self-managed CA, run by the
 * elected webhook replica after each of its own passes (SelfManagedCertificates.reconcile). It reads the
 * Secret and the location by name each pass (get, no watch: RBAC stays on two names), copies the
 * bundle into both, and lets planStorageTls decide when to issue.
 */
export class StorageTlsIssuer {
  private published: { bundle: string; since: number } | undefined;

  constructor(private readonly options: StorageTlsOptions) {}

  /** One pass; returns how long to sleep before the next one if nothing happens. */
  async reconcile(webhook: TlsSecretData, now = Date.now()): Promise<number> {
    const { kc, log, namespace, secretName, settings, location } = this.options;
    const bundle = webhook["ca.crt"];
    const locationInSync = await this.publishToLocation(bundle);
    const secret = await kubeGetOptional<Secret>(kc, `${secretsOf(namespace)}/${encodeURIComponent(secretName)}`);
    const current = decodeKeys(secret?.data, STORAGE_TLS_KEYS);
    const published = current?.["ca.crt"] === bundle && locationInSync;
    if (!published) this.published = undefined;
    else if (this.published?.bundle !== bundle) this.published = { bundle, since: now };
    const step = planStorageTls(current, { now, signerPem: webhook["signer.crt"], bundle, bundlePublishedSince: this.published?.since }, settings);
    if (step.kind === "wait") return step.until - now;
    log.info({ step: step.kind, reason: step.reason, secret: secretName, location: location ? `${location.namespace}/${location.name}` : undefined }, "updating the storage certificate");
    const next = applyStorageTls(step, current, { certPem: webhook["signer.crt"], keyPem: webhook["signer.key"] }, bundle, now, settings);
    // Another writer first (409): the next pass reads it.
    await writeTlsSecret(kc, namespace, secretName, secret, encodeKeys(next, STORAGE_TLS_KEYS));
    return 200;
  }

  /** Patches the location's caCert to the bundle; true when it carries it (or none is managed or it does not exist yet). */
  private async publishToLocation(bundle: string): Promise<boolean> {
    const { kc, log, location } = this.options;
    if (!location) return true;
    const path = `/apis/velero.io/v1/namespaces/${encodeURIComponent(location.namespace)}/backupstoragelocations/${encodeURIComponent(location.name)}`;
    const bsl = await kubeGetOptional<BackupStorageLocation>(kc, path);
    if (!bsl) return true; // not applied yet: NOTES prints it with the bundle
    const caCert = Buffer.from(bundle).toString("base64");
    if (bsl.spec?.objectStorage?.caCert === caCert) return true;
    try {
      await kubeRequest(kc, "PATCH", path, { spec: { objectStorage: { caCert } } }, "application/merge-patch+json");
    } catch (err) {
      if (err instanceof KubeRequestError && (err.status === 404 || err.status === 409)) return false;
      throw err;
    }
    log.info({ location: `${location.namespace}/${location.name}` }, "BackupStorageLocation caCert updated");
    return false; // published from the next pass on, which sees it
  }
}
