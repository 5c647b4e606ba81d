import type { Command } from "commander";
import { admissionApp } from "../admission/server.js";
import { createAdmissionMetrics } from "../admission/metrics.js";
import { loadKubeConfig } from "../kube/loadConfig.js";
import type { AdmissionReview } from "../admission/review.js";
import { serveHealth } from "../server/health.js";
import { listen, type RunningServer } from "../server/http.js";
import { Lifecycle } from "../server/lifecycle.js";
import { createLogger } from "../server/logger.js";
import { createMetricsRegistry } from "../server/metrics.js";
import { readTlsFiles, watchTlsFiles } from "../server/tlsFiles.js";
import type { ClusterState } from "../admission/state.js";
import { loadStateFiles } from "./stateFiles.js";
import { collect } from "./options.js";

interface WebhookOptions {
  tlsCert: string;
  tlsKey: string;
  host: string;
  port: string;
  healthPort: string;
  kubeconfig?: string;
  namespace?: string;
  drainDelay: string;
  state: string[];
}

export function registerWebhook(program: Command): void {
  program
    .command("webhook")
    .description("serve the admission webhooks (POST /mutate/pods, POST /validate/velero) over HTTPS, with state from the cluster")
    .requiredOption("--tls-cert <file>", "serving certificate (PEM); reloaded when it changes")
    .requiredOption("--tls-key <file>", "serving key (PEM); reloaded when it changes")
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "HTTPS port", "8443")
    .option("--health-port <port>", "plain-HTTP port for /healthz, /readyz, /metrics", "8080")
    .option("--kubeconfig <file>", "kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
    .option("--namespace <name>", "the webhook's own namespace; its pods are never mutated (default: $POD_NAMESPACE)")
    .option("--drain-delay <ms>", "time between turning unready and closing the listener on SIGTERM", "3000")
    .option("--state <file>", "serve decisions from these YAML files (policies, namespaces) instead of watching a cluster; repeatable", collect, [])
    .action(async (options: WebhookOptions) => {
      const log = createLogger();
      const registry = createMetricsRegistry();
      const metrics = createAdmissionMetrics(registry);
      const lifecycle = new Lifecycle(log, { drainDelayMs: Number(options.drainDelay) });
      const namespace = options.namespace ?? process.env.POD_NAMESPACE;
      const countPolicies = (snapshot: ClusterState) => {
        metrics.policies.set({ kind: "SnapshotPolicy" }, [...snapshot.policiesByNamespace.values()].reduce((n, l) => n + l.length, 0));
        metrics.policies.set({ kind: "ClusterSnapshotPolicy" }, snapshot.clusterPolicies.length);
      };

      let current: () => ClusterState;
      let prepareVelero: ((review: AdmissionReview, state: ClusterState) => Promise<ClusterState>) | undefined;
      if (options.state.length > 0) {
        // Offline mode: a fixed state from files (previews, benchmarks); always ready.
        const fixed = loadStateFiles(options.state, namespace);
        for (const problem of fixed.problems) log.warn({ problem }, "object ignored");
        countPolicies(fixed);
        current = () => fixed;
      } else {
        const kc = await loadKubeConfig(options.kubeconfig);
        const [{ InformedState }, { VeleroLookups }] = await Promise.all([import("../kube/informedState.js"), import("../kube/veleroLookups.js")]);
        const state = new InformedState(kc, log, namespace, countPolicies);
        lifecycle.addReadinessCheck("informers synced", () => state.isSynced);
        lifecycle.onShutdown(() => state.stop());
        current = () => state.current();
        const lookups = new VeleroLookups(kc);
        prepareVelero = (review, snapshot) => lookups.prepare(review, snapshot);
        void state.start();
      }

      await serveHealth(lifecycle, registry, Number(options.healthPort), options.host);
      const server: RunningServer = await listen({
        handler: admissionApp({ state: current, log, metrics, ...(prepareVelero ? { prepareVelero } : {}) }),
        port: Number(options.port),
        host: options.host,
        tls: readTlsFiles(options.tlsCert, options.tlsKey),
      });
      lifecycle.addServer(server);
      lifecycle.onShutdown(watchTlsFiles(options.tlsCert, options.tlsKey, (tls) => server.setTls(tls), log));
      lifecycle.installSignalHandlers();
      log.info({ url: server.url, health: options.healthPort }, "webhook listening");
    });
}
