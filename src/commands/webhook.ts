import { isIP } from "node:net";
import { hostname } from "node:os";
import type { Command } from "commander";
import { admissionApp } from "../admission/server.js";
import { createAdmissionMetrics } from "../admission/metrics.js";
import { loadKubeConfig } from "../kube/loadConfig.js";
import type { AdmissionReview } from "../admission/review.js";
import { serveHealth } from "../server/health.js";
import type { RunningServer } from "../server/http.js";
import { listenAt } from "../server/listenAddress.js";
import { Lifecycle } from "../server/lifecycle.js";
import { createLogger } from "../server/logger.js";
import { createMetricsRegistry } from "../server/metrics.js";
import { readCaFile, readTlsFiles, watchFiles, watchTlsFiles } from "../server/tlsFiles.js";
import { requireClientCertificate } from "../server/clientAuth.js";
import type { ClusterState } from "../admission/state.js";
import { loadStateFiles } from "./stateFiles.js";
import { collect, durationMs } from "./options.js";
import { DEFAULT_VELERO_USERNAMES, serviceAccountUsernameProblem } from "../velero/serviceAccounts.js";
import type { SelfManagedOptions } from "../certs/selfManaged.js";
import type { StorageTlsOptions } from "../certs/storageTls.js";
import type { TlsMaterial } from "../server/http.js";

/** RFC 1123 host names (ASCII labels of up to 63 characters, 253 in all), as a certificate SAN must hold them. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;

/** This replica's name: its pod (the chart sets POD_NAME), else host and pid. Never empty. */
const instanceName = () => process.env.POD_NAME || `${hostname()}-${process.pid}`;

type TlsMode =
  | { mode: "files"; certFile: string; keyFile: string }
  | { mode: "secret"; options: Omit<SelfManagedOptions, "kc" | "log" | "registry" | "onCertificates" | "storage">; storage?: Omit<StorageTlsOptions, "kc" | "log"> | undefined };

function checkNames(dnsNames: string[], ipAddresses: string[], prefix: string): void {
  for (const name of dnsNames) {
    if (!DNS_NAME.test(name)) throw new Error(`--${prefix}-dns "${name}" is not a DNS name (ASCII letters, digits and hyphens in dot-separated labels; use punycode for others)`);
  }
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0 || (isIP(ip) === 6 && ip.includes("."))) throw new Error(`--${prefix}-ip "${ip}" is not an IPv4 or plain IPv6 address`);
  }
}

/** The storage certificate the leader issues from the self-managed CA (--storage-tls-secret), or undefined. */
function storageTls(options: WebhookOptions, namespace: string, caLifetimeMs: number, publishDelayMs: number): Omit<StorageTlsOptions, "kc" | "log"> | undefined {
  const dnsNames = options.storageCertDns ?? [];
  const ipAddresses = options.storageCertIp ?? [];
  if (!options.storageTlsSecret) {
    if (dnsNames.length + ipAddresses.length > 0 || options.storageBackupLocation) throw new Error("--storage-cert-dns, --storage-cert-ip and --storage-backup-location need --storage-tls-secret");
    return undefined;
  }
  if (options.storageTlsSecret === options.tlsSecret) throw new Error("--storage-tls-secret must differ from --tls-secret");
  if (dnsNames.length + ipAddresses.length === 0) throw new Error("--storage-tls-secret needs the certificate's names: give --storage-cert-dns and/or --storage-cert-ip");
  checkNames(dnsNames, ipAddresses, "storage-cert");
  const certLifetimeMs = durationMs(options.storageCertLifetime ?? "168h", "--storage-cert-lifetime");
  if (certLifetimeMs > caLifetimeMs) throw new Error("--storage-cert-lifetime must be at most --ca-lifetime");
  // As for the webhook's own: a certificate from the old CA must outlast the publication of a new bundle.
  if (publishDelayMs * 3 > certLifetimeMs) throw new Error("--ca-publish-delay must be at most a third of --storage-cert-lifetime");
  let location: { namespace: string; name: string } | undefined;
  if (options.storageBackupLocation) {
    const [locationNamespace, name, ...rest] = options.storageBackupLocation.split("/");
    if (!locationNamespace || !name || rest.length > 0) throw new Error(`--storage-backup-location "${options.storageBackupLocation}" is not <namespace>/<name>`);
    location = { namespace: locationNamespace, name };
  }
  return { namespace, secretName: options.storageTlsSecret, settings: { dnsNames, ipAddresses, certLifetimeMs, publishDelayMs }, location };
}

/** Which certificate source the flags select; every inconsistency is refused before anything starts. */
export function tlsMode(options: WebhookOptions, namespace: string | undefined): TlsMode {
  const files = options.tlsCert !== undefined || options.tlsKey !== undefined;
  if (files && options.tlsSecret) throw new Error("give either --tls-cert/--tls-key or --tls-secret, not both");
  if (files) {
    if (options.storageTlsSecret) throw new Error("--storage-tls-secret needs --tls-secret: the storage certificate comes from the self-managed CA");
    if (!options.tlsCert || !options.tlsKey) throw new Error("--tls-cert and --tls-key go together");
    return { mode: "files", certFile: options.tlsCert, keyFile: options.tlsKey };
  }
  if (!options.tlsSecret) {
    if (options.storageTlsSecret) throw new Error("--storage-tls-secret needs --tls-secret: the storage certificate comes from the self-managed CA");
    throw new Error("no serving certificate: give --tls-cert and --tls-key, or --tls-secret for self-managed certificates");
  }
  if (!namespace) throw new Error("--tls-secret needs the webhook's namespace: give --namespace or set POD_NAMESPACE");
  if (options.certDns.length + options.certIp.length === 0) throw new Error("--tls-secret needs the certificate's names: give --cert-dns and/or --cert-ip");
  const caLifetimeMs = durationMs(options.caLifetime, "--ca-lifetime");
  const certLifetimeMs = durationMs(options.certLifetime, "--cert-lifetime");
  const leaseMs = durationMs(options.leaseDuration, "--lease-duration");
  if (certLifetimeMs < 3_000) throw new Error("--cert-lifetime must be at least 3s");
  if (caLifetimeMs < certLifetimeMs) throw new Error("--ca-lifetime must be at least --cert-lifetime");
  if (leaseMs < 2_000) throw new Error("--lease-duration must be at least 2s");
  const publishDelayMs = durationMs(options.caPublishDelay, "--ca-publish-delay");
  // After a CA rotation the serving certificate from the old CA (at most min(cert, CA/3) long) must
  // outlast the publication of the new bundle; a third of it leaves room for lag and a leader change.
  if (publishDelayMs * 3 > Math.min(certLifetimeMs, caLifetimeMs / 3)) {
    throw new Error("--ca-publish-delay must be at most a third of the shorter of --cert-lifetime and a third of --ca-lifetime");
  }
  checkNames(options.certDns, options.certIp, "cert");
  return {
    mode: "secret",
    storage: storageTls(options, namespace, caLifetimeMs, publishDelayMs),
    options: {
      namespace,
      secretName: options.tlsSecret,
      leaseName: options.lease ?? `${options.tlsSecret}-leader`,
      // An empty identity would read as "released" to the other replicas.
      identity: instanceName(),
      webhookConfigurations: [
        ...options.mutatingWebhookConfiguration.map((name) => ({ kind: "MutatingWebhookConfiguration" as const, name })),
        ...options.validatingWebhookConfiguration.map((name) => ({ kind: "ValidatingWebhookConfiguration" as const, name })),
      ],
      settings: { caLifetimeMs, certLifetimeMs, dnsNames: options.certDns, ipAddresses: options.certIp, publishDelayMs },
      // client-go's proportions: renew deadline 2/3 and retry period 2/15 of the lease duration.
      lease: { durationSeconds: Math.ceil(leaseMs / 1000), renewDeadlineMs: (leaseMs * 2) / 3, retryPeriodMs: (leaseMs * 2) / 15 },
    },
  };
}

/** Client-certificate authentication of callers (the apiserver), or undefined when off. */
export function clientAuthMode(options: Pick<WebhookOptions, "clientCa" | "clientName">): { caFile: string; names: string[] } | undefined {
  const names = options.clientName ?? [];
  if (!options.clientCa) {
    if (names.length > 0) throw new Error("--client-name needs --client-ca: the CA that signs the apiserver's client certificate");
    return undefined;
  }
  // A CA such as the cluster's signs kubelets' and users' certificates too: the name singles out the apiserver.
  if (names.length === 0) throw new Error("--client-ca needs at least one --client-name: the CN or DNS name of the apiserver's client certificate");
  for (const name of names) if (!name.trim()) throw new Error("--client-name must not be empty");
  return { caFile: options.clientCa, names };
}

interface WebhookOptions {
  storageTlsSecret?: string;
  /** Commander defaults them to []. */
  storageCertDns?: string[];
  storageCertIp?: string[];
  storageCertLifetime?: string;
  storageBackupLocation?: string;
  clientCa?: string;
  /** Commander defaults it to []. */
  clientName?: string[];
  tlsCert?: string;
  tlsKey?: string;
  tlsSecret?: string;
  certDns: string[];
  certIp: string[];
  lease?: string;
  leaseDuration: string;
  mutatingWebhookConfiguration: string[];
  validatingWebhookConfiguration: string[];
  caLifetime: string;
  certLifetime: string;
  caPublishDelay: string;
  host: string;
  port: string;
  healthPort: string;
  kubeconfig?: string;
  namespace?: string;
  drainDelay: string;
  state: string[];
  /** Commander defaults it to []. */
  veleroServiceAccount?: string[];
  checkVeleroSecretKeys?: boolean;
  /** false with --no-pod-events (commander defaults it to true). */
  podEvents?: boolean;
}

export function registerWebhook(program: Command): void {
  program
    .command("webhook")
    .description("serve the admission webhooks (POST /mutate/pods, POST /validate/velero) over HTTPS, with state from the cluster")
    .option("--tls-cert <file>", "serving certificate (PEM); reloaded when it changes (or use --tls-secret)")
    .option("--tls-key <file>", "serving key (PEM); reloaded when it changes")
    .option("--tls-secret <name>", "self-managed TLS: keep a CA and serving certificate in this Secret of --namespace (created and renewed by the replica holding --lease), served from it with hot reload")
    .option("--cert-dns <name>", "with --tls-secret: a DNS name of the serving certificate; repeatable", collect, [])
    .option("--cert-ip <address>", "with --tls-secret: an IP address of the serving certificate; repeatable", collect, [])
    .option("--lease <name>", "with --tls-secret: the Lease that elects the replica managing certificates (default: <tls-secret>-leader)")
    .option("--lease-duration <duration>", "with --tls-secret: how long a silent leader keeps the Lease (Go duration)", "15s")
    .option("--mutating-webhook-configuration <name>", "with --tls-secret: our MutatingWebhookConfiguration, whose caBundle is kept current; repeatable", collect, [])
    .option("--validating-webhook-configuration <name>", "with --tls-secret: our ValidatingWebhookConfiguration, whose caBundle is kept current; repeatable", collect, [])
    .option("--ca-lifetime <duration>", "with --tls-secret: CA validity; a successor is made when a third is left, and both are trusted until the old one expires", "8760h")
    .option("--cert-lifetime <duration>", "with --tls-secret: serving certificate validity; renewed at two-thirds", "168h")
    .option("--ca-publish-delay <duration>", "with --tls-secret: how long a new CA must be in every caBundle before certificates it signed are served", "10s")
    .option("--storage-tls-secret <name>", "with --tls-secret: also issue the storage's serving certificate from the self-managed CA into this Secret of --namespace (tls.crt, tls.key, ca.crt), renewed and rotated with the CA")
    .option("--storage-cert-dns <name>", "with --storage-tls-secret: a DNS name of the storage certificate; repeatable", collect, [])
    .option("--storage-cert-ip <address>", "with --storage-tls-secret: an IP address of the storage certificate; repeatable", collect, [])
    .option("--storage-cert-lifetime <duration>", "with --storage-tls-secret: storage certificate validity; renewed at two-thirds", "168h")
    .option("--storage-backup-location <namespace/name>", "with --storage-tls-secret: keep this BackupStorageLocation's spec.objectStorage.caCert equal to the CA bundle")
    .option("--client-ca <file>", "require callers to present a client certificate signed by this CA (PEM bundle; reloaded when it changes); needs --client-name")
    .option("--client-name <name>", "with --client-ca: a CN or DNS SAN a caller's certificate may carry (the apiserver's); repeatable", collect, [])
    .option("--host <address>", 'address to listen on (HTTPS and health); "" listens on every interface, IPv6 and IPv4', "127.0.0.1")
    .option("--port <port>", "HTTPS port", "8443")
    .option("--health-port <port>", "plain-HTTP port for /healthz, /readyz, /metrics", "8080")
    .option("--kubeconfig <file>", "kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
    .option("--namespace <name>", "the webhook's own namespace; its pods are never mutated (default: $POD_NAMESPACE)")
    .option("--drain-delay <ms>", "time between turning unready and closing the listener on SIGTERM", "3000")
    .option("--state <file>", "serve decisions from these YAML files (policies, namespaces) instead of watching a cluster; repeatable", collect, [])
    .option(
      "--velero-service-account <username>",
      `Velero's ServiceAccount (system:serviceaccount:<namespace>:<name>), whose requests always pass; repeatable (default: ${DEFAULT_VELERO_USERNAMES.join(", ")})`,
      collect,
      [],
    )
    .option("--check-velero-secret-keys", "read the Secrets a BackupStorageLocation names (keys only, never values) to check the keys it uses; needs get on Secrets in Velero's namespace")
    .option("--no-pod-events", "do not record pod warnings as Events on their workloads (they are still returned to the client and logged)")
    .action(async (options: WebhookOptions) => {
      const log = createLogger();
      const registry = createMetricsRegistry();
      const metrics = createAdmissionMetrics(registry);
      const lifecycle = new Lifecycle(log, { drainDelayMs: Number(options.drainDelay) });
      const namespace = options.namespace ?? process.env.POD_NAMESPACE;
      const tls = tlsMode(options, namespace);
      const clientAuth = clientAuthMode(options);
      const countPolicies = (snapshot: ClusterState) => {
        metrics.policies.set({ kind: "SnapshotPolicy" }, [...snapshot.policiesByNamespace.values()].reduce((n, l) => n + l.length, 0));
        metrics.policies.set({ kind: "ClusterSnapshotPolicy" }, snapshot.clusterPolicies.length);
      };

      let current: () => ClusterState;
      let prepareVelero: ((review: AdmissionReview, state: ClusterState) => Promise<ClusterState>) | undefined;
      let preparePods: ((review: AdmissionReview, state: ClusterState) => Promise<ClusterState>) | undefined;
      for (const username of options.veleroServiceAccount ?? []) {
        const problem = serviceAccountUsernameProblem(username);
        if (problem) throw new Error(`--velero-service-account: ${problem}`);
      }
      const veleroServiceAccounts = options.veleroServiceAccount?.length ? options.veleroServiceAccount : DEFAULT_VELERO_USERNAMES;
      const withVeleroAccounts = (snapshot: ClusterState): ClusterState => ({ ...snapshot, velero: { ...snapshot.velero, serviceAccounts: veleroServiceAccounts } });
      let onPodWarnings: ((review: AdmissionReview, warnings: readonly string[]) => void) | undefined;
      if (options.state.length > 0) {
        // Offline mode: a fixed state from files (previews, benchmarks); always ready.
        const fixed = loadStateFiles(options.state, namespace);
        for (const problem of fixed.problems) log.warn({ problem }, "object ignored");
        countPolicies(fixed);
        const fixedWithAccounts = withVeleroAccounts(fixed);
        current = () => fixedWithAccounts;
      } else {
        const kc = await loadKubeConfig(options.kubeconfig);
        const [{ InformedState }, { VeleroLookups }, { ClaimLookups }] = await Promise.all([import("../kube/informedState.js"), import("../kube/veleroLookups.js"), import("../kube/claimLookups.js")]);
        const claims = new ClaimLookups(kc, { onLookupFailed: (what, err) => log.warn({ lookup: what, err: String(err) }, "claim lookup failed; pod judged without it") });
        preparePods = (review, snapshot) => claims.prepare(review, snapshot);
        const state = new InformedState(kc, log, namespace, countPolicies);
        lifecycle.addReadinessCheck("informers synced", () => state.isSynced);
        lifecycle.onShutdown(() => state.stop());
        current = () => state.current();
        const lookups = new VeleroLookups(kc, {
          checkSecretKeys: options.checkVeleroSecretKeys === true,
          onLookupFailed: (what, err) => log.warn({ lookup: what, err: String(err) }, "Velero lookup failed; judged without it"),
        });
        // Only Velero requests read serviceAccounts, and each of them passes through here.
        prepareVelero = (review, snapshot) => {
          state.listUnlistedNow();
          return lookups.prepare(review, withVeleroAccounts(snapshot));
        };
        if (options.podEvents !== false) {
          // Pod warnings reach a controller, not a person: also record them on the workload.
          const [{ EventRecorder, kubeEventSink }, { podWarningOccurrences, REPORTING_CONTROLLER }] = await Promise.all([import("../kube/eventRecorder.js"), import("../admission/warningEvents.js")]);
          const recorder = new EventRecorder({
            sink: kubeEventSink(kc),
            log,
            reportingController: REPORTING_CONTROLLER,
            reportingInstance: instanceName(),
            onWrite: (result) => metrics.warningEvents.inc({ result }),
          });
          recorder.start();
          lifecycle.onShutdown(() => recorder.stop());
          onPodWarnings = (review, warnings) => podWarningOccurrences(review, warnings).forEach((o) => recorder.record(o));
        }
        void state.start();
      }

      await serveHealth(lifecycle, registry, Number(options.healthPort), options.host);
      lifecycle.installSignalHandlers();
      let server: RunningServer | undefined;
      // The serving pair and the client CA reload independently; the server always gets both.
      let serving: TlsMaterial | undefined;
      let clientCa = clientAuth ? readCaFile(clientAuth.caFile) : undefined;
      const material = (): TlsMaterial => ({ ...serving!, ...(clientCa ? { ca: clientCa } : {}) });
      const setServing = (pair: TlsMaterial) => {
        serving = pair;
        server?.setTls(material());
      };
      if (clientAuth) {
        const { caFile } = clientAuth;
        const setClientCa = (pem: Buffer) => {
          clientCa = pem;
          if (serving) server?.setTls(material());
        };
        lifecycle.onShutdown(watchFiles([caFile], () => readCaFile(caFile), setClientCa, log, "client CA"));
      }
      const app = admissionApp({ state: current, log, metrics, ...(prepareVelero ? { prepareVelero } : {}), ...(preparePods ? { preparePods } : {}), ...(onPodWarnings ? { onPodWarnings } : {}) });
      const handler = clientAuth ? requireClientCertificate(app, clientAuth.names, log) : app;
      const start = () => listenAt({ host: options.host || undefined, port: Number(options.port) }, { handler, tls: material(), clientCertificates: clientAuth !== undefined });
      if (tls.mode === "files") {
        serving = readTlsFiles(tls.certFile, tls.keyFile);
        server = await start();
        lifecycle.onShutdown(watchTlsFiles(tls.certFile, tls.keyFile, setServing, log));
      } else {
        // The HTTPS port opens once the Secret holds certificates (made by whichever replica leads).
        const kc = await loadKubeConfig(options.kubeconfig);
        const [{ SelfManagedCertificates }, { StorageTlsIssuer }] = await Promise.all([import("../certs/selfManaged.js"), import("../certs/storageTls.js")]);
        let first: () => void = () => undefined;
        const firstTls = new Promise<void>((resolve) => (first = resolve));
        const certificates = new SelfManagedCertificates({
          ...tls.options,
          kc,
          log,
          registry,
          storage: tls.storage ? new StorageTlsIssuer({ ...tls.storage, kc, log }) : undefined,
          onCertificates: (pair) => {
            setServing(pair);
            first();
          },
        });
        lifecycle.addReadinessCheck("certificates loaded", () => server !== undefined);
        lifecycle.onShutdown(() => certificates.stop());
        await certificates.start();
        await firstTls;
        server = await start();
      }
      if (lifecycle.shuttingDown) await server.close(0);
      else lifecycle.addServer(server);
      log.info({ url: server.url, health: options.healthPort, clientNames: clientAuth?.names }, "webhook listening");
    });
}
