import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KubeConfig, V1LabelSelector } from "@kubernetes/client-node";
import { applyObjects } from "../../src/kube/apply.js";
import { createCa, issueCertificate } from "../../src/certs/authority.js";
import { repoRoot } from "./binaries.js";
import { freePort, startChild, waitForHttp200, type Child } from "./processes.js";

export interface WebhookProcess {
  readonly url: string;
  readonly healthUrl: string;
  readonly caPem: string;
  readonly dir: string;
  readonly logFile: string;
  /** The running child's pid (undefined when stopped). */
  pid(): number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Removes the temp dir too. */
  dispose(): Promise<void>;
}

/**
 * The real `app-snapshots webhook` process (from dist/), with a CA and a serving certificate for
 * 127.0.0.1 in a temp dir, state from the given cluster. start() returns once /readyz says ready.
 */
export async function webhookProcess(options: {
  kubeconfigPath: string;
  namespace?: string;
  extraArgs?: string[];
  /**
   * Existing certificate files (make demo uses certs/); by default a fresh CA and pair in the temp
   * dir; "self-managed": no files, extraArgs carry --tls-secret and its companions (caPem is then "").
   */
  tls?: { certFile: string; keyFile: string; caPem: string } | "self-managed";
  env?: NodeJS.ProcessEnv;
  /** The HTTPS port (default: a free one). */
  port?: number;
}): Promise<WebhookProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-webhook-"));
  let tls = options.tls;
  if (tls === undefined) {
    const ca = createCa({ commonName: "app-snapshots-test-webhook-ca", validityDays: 1 });
    const serving = issueCertificate(ca, { commonName: "app-snapshots-webhook", ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"], usage: "server", validityDays: 1 });
    writeFileSync(path.join(dir, "tls.crt"), serving.certPem);
    writeFileSync(path.join(dir, "tls.key"), serving.keyPem, { mode: 0o600 });
    tls = { certFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key"), caPem: ca.certPem };
  }
  const fileArgs = tls === "self-managed" ? [] : [`--tls-cert=${tls.certFile}`, `--tls-key=${tls.keyFile}`];
  const caPem = tls === "self-managed" ? "" : tls.caPem;
  const [port, healthPort] = [options.port ?? (await freePort()), await freePort()];
  const logFile = path.join(dir, "webhook.log");
  let child: Child | undefined;
  const self: WebhookProcess = {
    url: `https://127.0.0.1:${port}`,
    healthUrl: `http://127.0.0.1:${healthPort}`,
    caPem,
    dir,
    logFile,
    pid: () => child?.process.pid,
    async start() {
      child = startChild(
        "app-snapshots webhook",
        process.execPath,
        [
          path.join(repoRoot, "dist", "src", "cli.js"),
          "webhook",
          ...fileArgs,
          `--port=${port}`,
          `--health-port=${healthPort}`,
          `--kubeconfig=${options.kubeconfigPath}`,
          "--drain-delay=0",
          ...(options.namespace ? [`--namespace=${options.namespace}`] : []),
          ...(options.extraArgs ?? []),
        ],
        logFile,
        options.env,
      );
      await waitForHttp200(child, `${self.healthUrl}/readyz`, 20_000);
    },
    async stop() {
      await child?.stop();
      child = undefined;
    },
    async dispose() {
      await self.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}

/** The fields every webhook entry of ours shares, in url mode (the chart uses a Service instead). */
function webhookEntry(name: string, options: MutatingWebhookOptions, rules: object[], failurePolicy: "Ignore" | "Fail", timeoutSeconds: number) {
  return {
    name,
    // No caBundle when caPem is "": a self-managed webhook patches it in itself.
    clientConfig: { url: options.url, ...(options.caPem ? { caBundle: Buffer.from(options.caPem).toString("base64") } : {}) },
    rules,
    failurePolicy: options.failurePolicy ?? failurePolicy,
    sideEffects: "None",
    timeoutSeconds,
    matchPolicy: "Equivalent",
    admissionReviewVersions: ["v1"],
    ...(options.namespaceSelector ? { namespaceSelector: options.namespaceSelector } : {}),
  };
}

export interface MutatingWebhookOptions {
  name: string;
  url: string;
  caPem: string;
  namespaceSelector?: V1LabelSelector;
  reinvocationPolicy?: "Never" | "IfNeeded";
  failurePolicy?: "Ignore" | "Fail";
}

/** A MutatingWebhookConfiguration for pod CREATE in url mode, as the chart will render it (minus the Service). */
export async function applyPodMutatingWebhook(kc: KubeConfig, options: MutatingWebhookOptions): Promise<void> {
  const body = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: options.name },
    webhooks: [
      {
        ...webhookEntry("pods.appsnapshots.io", options, [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }], "Ignore", 5),
        reinvocationPolicy: options.reinvocationPolicy ?? "IfNeeded",
        // It records Events on the owning workload, except for dry runs (as the chart declares).
        sideEffects: "NoneOnDryRun",
        matchConditions: [
          {
            name: "not-a-mirror-pod",
            expression: "!has(object.metadata.annotations) || !('kubernetes.io/config.mirror' in object.metadata.annotations)",
          },
        ],
      },
    ],
  };
  await applyObjects(kc, [body]);
}

/** The ValidatingWebhookConfiguration for Velero's objects, in url mode. */
export async function applyVeleroValidatingWebhook(kc: KubeConfig, options: Omit<MutatingWebhookOptions, "reinvocationPolicy">): Promise<void> {
  const body = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: options.name },
    webhooks: [
      webhookEntry(
        "velero.appsnapshots.io",
        options,
        [
          { apiGroups: ["velero.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE", "DELETE"], resources: ["backupstoragelocations"], scope: "Namespaced" },
          { apiGroups: ["velero.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["backups", "schedules"], scope: "Namespaced" },
          { apiGroups: ["velero.io"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["restores"], scope: "Namespaced" },
        ],
        "Fail",
        10,
      ),
    ],
  };
  await applyObjects(kc, [body]);
}
