import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { Counter, Gauge, type Registry } from "prom-client";
import { LeaderElector } from "../kube/leaderElection.js";
import { NamedWatch } from "../kube/namedWatch.js";
import { KubeRequestError, kubeRequest } from "../kube/request.js";
import type { TlsMaterial } from "../server/http.js";
import type { Logger } from "../server/logger.js";
import { bundlePublished, caBundlePatch, type WebhookConfigurationView } from "./caBundle.js";
import { keyMatches, parseCertificate } from "./pem.js";
import { secretsOf, writeTlsSecret, type Secret } from "./tlsSecret.js";
import { applyRotation, fromSecretData, planRotation, toSecretData, type RotationSettings, type TlsSecretData } from "./rotation.js";

export interface WebhookConfigurationRef {
  kind: "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration";
  name: string;
}

export interface SelfManagedOptions {
  kc: KubeConfig;
  log: Logger;
  registry: Registry;
  namespace: string;
  secretName: string;
  leaseName: string;
  identity: string;
  /** Our own configurations, whose caBundle the leader keeps equal to the Secret's ca.crt. */
  webhookConfigurations: WebhookConfigurationRef[];
  settings: RotationSettings;
  /** Called with every new valid serving pair found in the Secret (every replica hot-reloads). */
  onCertificates: (tls: TlsMaterial) => void;
  /** Also issue the storage's serving certificate from our CA (the elected replica, after each of its passes). */
  storage?: { reconcile(webhook: TlsSecretData): Promise<number> } | undefined;
  /** Lease timing (tests shorten it). */
  lease?: { durationSeconds?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
}

const ADMISSION_API = "/apis/admissionregistration.k8s.io/v1";
const collectionOf = (kind: WebhookConfigurationRef["kind"]) => `${ADMISSION_API}/${kind === "MutatingWebhookConfiguration" ? "mutatingwebhookconfigurations" : "validatingwebhookconfigurations"}`;
/** Checked at least this often even without events, so a missed watch event cannot stall renewal. */
const MAX_SLEEP_MS = 60_000;

function certificateMetrics(registry: Registry) {
  return {
    expiry: new Gauge({
      name: "app_snapshots_webhook_certificate_expiry_timestamp_seconds",
      help: "When the certificate in use expires (Unix time): the serving certificate and the signing CA.",
      labelNames: ["certificate"],
      registers: [registry],
    }),
    leader: new Gauge({ name: "app_snapshots_webhook_certificate_leader", help: "1 while this replica manages the certificates and caBundles.", registers: [registry] }),
    steps: new Counter({ name: "app_snapshots_webhook_certificate_changes_total", help: "Changes written to the certificate Secret, by step.", labelNames: ["step"], registers: [registry] }),
    patches: new Counter({ name: "app_snapshots_webhook_ca_bundle_patches_total", help: "caBundle patches written to our webhook configurations.", labelNames: ["configuration"], registers: [registry] }),
  };
}

/**
 * Self-managed webhook TLS (the chart's default). Every replica watches the Secret and hands each
 * new serving pair to the server, which swaps it for new connections without dropping any. One
 * replica at a time, chosen by a Lease, also runs the reconcile loop: create the certificates
 * if missing, renew and rotate them as planRotation says, and keep our webhook configurations'
 * caBundle equal to the bundle, re-patching whenever someone changes them.
 */
export class SelfManagedCertificates {
  private readonly secret: NamedWatch<Secret>;
  private readonly configurations: Array<{ ref: WebhookConfigurationRef; watch: NamedWatch<KubernetesObject & WebhookConfigurationView> }>;
  private readonly elector: LeaderElector;
  private readonly metrics: ReturnType<typeof certificateMetrics>;
  private served = "";
  /** The Secret as last written by us, until the watch catches up with it. */
  private written: Secret | undefined;
  private published: { bundle: string; since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: SelfManagedOptions) {
    const { kc, log } = options;
    this.metrics = certificateMetrics(options.registry);
    this.secret = new NamedWatch<Secret>(kc, log, secretsOf(options.namespace), options.secretName, (secret) => {
      if (secret && this.written && secret.metadata?.resourceVersion === this.written.metadata?.resourceVersion) this.written = undefined;
      this.serve(secret);
      this.trigger();
    });
    this.configurations = options.webhookConfigurations.map((ref) => ({
      ref,
      watch: new NamedWatch<KubernetesObject & WebhookConfigurationView>(kc, log, collectionOf(ref.kind), ref.name, () => this.trigger()),
    }));
    this.elector = new LeaderElector(kc, log, {
      namespace: options.namespace,
      name: options.leaseName,
      identity: options.identity,
      ...(options.lease?.durationSeconds ? { leaseDurationSeconds: options.lease.durationSeconds } : {}),
      ...(options.lease?.renewDeadlineMs ? { renewDeadlineMs: options.lease.renewDeadlineMs } : {}),
      ...(options.lease?.retryPeriodMs ? { retryPeriodMs: options.lease.retryPeriodMs } : {}),
      onStartLeading: () => {
        this.metrics.leader.set(1);
        this.trigger();
      },
      onStopLeading: () => this.metrics.leader.set(0),
    });
  }

  async start(): Promise<void> {
    this.elector.start();
    await Promise.all([this.secret.start(), ...this.configurations.map((c) => c.watch.start())]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await Promise.all([this.elector.stop(), this.secret.stop(), ...this.configurations.map((c) => c.watch.stop())]);
  }

  /** Hands a new, consistent serving pair to the server; anything else keeps the current one. */
  private serve(secret: Secret | undefined): void {
    const certs = fromSecretData(secret?.data);
    if (!certs) return;
    const fingerprint = certs["tls.crt"] + certs["tls.key"];
    if (fingerprint === this.served) return;
    try {
      const leaf = parseCertificate(certs["tls.crt"]);
      if (!keyMatches(leaf, certs["tls.key"])) throw new Error("tls.key does not belong to tls.crt");
      this.options.onCertificates({ cert: certs["tls.crt"], key: certs["tls.key"] });
      this.served = fingerprint;
      this.metrics.expiry.set({ certificate: "serving" }, leaf.notAfter / 1000);
      this.metrics.expiry.set({ certificate: "ca" }, parseCertificate(certs["signer.crt"]).notAfter / 1000);
      this.options.log.info({ secret: this.options.secretName, notAfter: new Date(leaf.notAfter).toISOString() }, "serving certificate loaded");
    } catch (err) {
      this.options.log.warn({ secret: this.options.secretName, err: (err as Error).message }, "serving certificate in the Secret not usable; keeping the current one");
    }
  }

  /** Runs reconcile now, or once more right after the one in progress (never two at once). */
  private trigger(): void {
    if (this.stopped || !this.elector.isLeader) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.reconcile()
      .then(
        (sleepMs) => this.schedule(sleepMs),
        (err: unknown) => {
          this.options.log.warn({ err: (err as Error).message }, "certificate reconcile failed; retrying in 2s");
          this.schedule(2_000);
        },
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      });
  }

  private schedule(sleepMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.trigger(), Math.max(50, Math.min(sleepMs, MAX_SLEEP_MS)));
    this.timer.unref();
  }

  /** One pass; returns how long to sleep before the next one if nothing happens. */
  private async reconcile(): Promise<number> {
    if (!this.secret.synced || this.configurations.some((c) => !c.watch.synced)) return 500;
    const { settings, log } = this.options;
    for (let pass = 0; pass < 4 && this.elector.isLeader && !this.stopped; pass++) {
      const secret = this.written ?? this.secret.current();
      const current = fromSecretData(secret?.data);
      if (current) await this.publish(current["ca.crt"]);
      const now = Date.now();
      const step = planRotation(current, { now, bundlePublishedSince: current ? this.publishedSince(current["ca.crt"], now) : undefined }, settings);
      if (step.kind === "wait") return Math.min(step.until - now, current ? await this.reconcileStorage(current) : 0);
      log.info({ step: step.kind, reason: step.reason, secret: this.options.secretName }, "updating webhook certificates");
      const next = applyRotation(step, current, now, settings);
      if (!(await this.write(secret, next))) return 200; // someone else wrote first: plan again on the watch event
      this.metrics.steps.inc({ step: step.kind });
      this.serve(this.written);
    }
    return 0;
  }

  /** The storage certificate's pass; its failure never stops the webhook's own renewals. */
  private async reconcileStorage(current: TlsSecretData): Promise<number> {
    if (!this.options.storage) return Number.POSITIVE_INFINITY;
    try {
      return await this.options.storage.reconcile(current);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, "storage certificate reconcile failed; retrying in 5s");
      return 5_000;
    }
  }

  /** When every configuration has carried `bundle` since (tracked here, as watch events arrive). */
  private publishedSince(bundle: string, now: number): number | undefined {
    const configurations = this.configurations.map((c) => c.watch.current());
    if (!bundlePublished(configurations, bundle)) {
      this.published = undefined;
      return undefined;
    }
    if (this.published?.bundle !== bundle) this.published = { bundle, since: now };
    return this.published.since;
  }

  /** Patches each configuration whose webhooks do not all carry `bundle`. */
  private async publish(bundle: string): Promise<void> {
    for (const { ref, watch } of this.configurations) {
      const configuration = watch.current();
      if (!configuration) continue; // not installed (yet): patched once the watch sees it
      const ops = caBundlePatch(configuration, bundle);
      if (!ops) continue;
      try {
        await kubeRequest(this.options.kc, "PATCH", `${collectionOf(ref.kind)}/${encodeURIComponent(ref.name)}`, ops, "application/json-patch+json");
        this.metrics.patches.inc({ configuration: ref.name });
        this.options.log.info({ configuration: `${ref.kind}/${ref.name}` }, "caBundle updated");
      } catch (err) {
        // A failed `test` (the list changed under us) is 422; the watch event brings the new list.
        if (!(err instanceof KubeRequestError && (err.status === 422 || err.status === 409 || err.status === 404))) throw err;
      }
    }
  }

  /** Creates or replaces the Secret (optimistic concurrency); false when another writer won. */
  private async write(previous: Secret | undefined, certs: TlsSecretData): Promise<boolean> {
    const { kc, namespace, secretName } = this.options;
    this.written = await writeTlsSecret(kc, namespace, secretName, previous, toSecretData(certs));
    return this.written !== undefined;
  }
}
